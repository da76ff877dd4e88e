import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, inject } from 'vitest';
import type { Database } from '../db/client.ts';
import { openAsLoginRole, urlForRole } from '../app/db-roles.ts';
import { createMetricsRegistry } from '../api/metrics.ts';
import { createOperatorApi, type OperatorApi, type OperatorApiDeps } from '../api/operator-api.ts';
import type { Role } from '../auth/permissions.ts';
import { createTestDatabase, testLogger, type TestDatabase } from './db.ts';
import { testAuditSigner } from './audit-key.ts';

export interface ApiHarness extends OperatorApi {
  t: TestDatabase;
  /** Pool logged in as the API role (member of thamani_app). */
  apiDb: Database;
  apiUrl: string;
  clock: { now: Date; advance(ms: number): void };
  /** A bearer token for each role, made through the service (as the bootstrap admin would). */
  tokenFor(role: Role): Promise<string>;
}

const SYSTEM = {
  actorId: 'system',
  actorRole: 'system',
  ip: null,
  userAgent: null,
  requestId: null,
};

/**
 * A test database plus the operator API connected as a LOGIN role of its own (roles are
 * cluster-wide; a random name keeps parallel test files apart). Cheap scrypt parameters keep
 * tests fast; production uses OWASP's.
 */
export async function createApiHarness(
  overrides: Partial<OperatorApiDeps> = {},
  opts: { t?: TestDatabase } = {},
): Promise<ApiHarness> {
  // A database of its own, or one another fixture made (the broker's, to test both on one).
  const t = opts.t ?? (await createTestDatabase());
  const loginRole = `thamani_api_t_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(18).toString('base64url');
  const owner = new pg.Client({ connectionString: t.url });
  await owner.connect();
  let apiDb: Database;
  try {
    apiDb = await openAsLoginRole(
      { client: owner, url: t.url },
      { kind: 'api', loginRole, password, poolMax: 5, logger: testLogger },
    );
  } finally {
    await owner.end();
  }
  /** For raw SQL as the API role (db/rls.test.ts). */
  const apiUrl = urlForRole(t.url, loginRole, password);
  const clock = {
    now: new Date(),
    advance(ms: number) {
      this.now = new Date(this.now.getTime() + ms);
    },
  };
  const api = await createOperatorApi({
    logger: testLogger,
    db: apiDb.db,
    ownerDb: t.database.db,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    probes: [
      { name: 'database', check: async () => (await apiDb.pool.query('SELECT 1')).rowCount === 1 },
    ],
    cookieSecret: randomBytes(32).toString('base64url'),
    publicBaseUrl: 'https://localhost:8443',
    sessionIdleMs: 30 * 60_000,
    sessionMaxMs: 12 * 3_600_000,
    passwordParams: { ln: 10, r: 8, p: 1 },
    now: () => clock.now,
    auditSigner: testAuditSigner,
    ...overrides,
  });
  await api.app.ready();
  afterAll(async () => {
    await api.app.close();
    await apiDb.close();
    const c = new pg.Client({ connectionString: inject('adminUrl') });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${t.name} WITH (FORCE)`).catch(() => undefined);
    await c.query(`DROP ROLE IF EXISTS ${loginRole}`).catch(() => undefined);
    await c.end();
  });
  const tokens = new Map<Role, string>();
  return {
    ...api,
    t,
    apiDb,
    apiUrl,
    clock,
    async tokenFor(role) {
      let token = tokens.get(role);
      if (!token) {
        token = (await api.users.createApiToken({ name: `test ${role}`, role }, SYSTEM)).token;
        tokens.set(role, token);
      }
      return token;
    },
  };
}

export const systemActor = SYSTEM;

/** Creates a user with a password set through its setup link (the real path). */
export async function createUserWithPassword(
  h: ApiHarness,
  input: { username: string; role: Role; password?: string },
) {
  const password = input.password ?? 'correct horse battery staple';
  const { user, setupLink } = await h.users.create(
    { username: input.username, displayName: input.username, role: input.role },
    SYSTEM,
  );
  const token = new URL(setupLink).searchParams.get('token')!;
  await h.users.completeLink(token, password, SYSTEM);
  return { user, password };
}
