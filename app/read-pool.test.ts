import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { roles, type Role } from '../auth/permissions.ts';
import { loadConfig } from '../config/index.ts';
import type { Database } from '../db/client.ts';
import { runScoped } from '../db/scoped.ts';
import { sql } from 'drizzle-orm';
import {
  createApiHarness,
  createUserWithPassword,
  systemActor,
  type ApiHarness,
} from '../test/api-harness.ts';
import { testLogger } from '../test/db.ts';
import { testRolePasswords } from '../test/gateway.ts';
import { API_LOGIN_ROLE } from './api-runtime.ts';
import { openAsLoginRole } from './db-roles.ts';
import { createLifecycle } from './lifecycle.ts';
import { openReadDatabase } from './role-fns.ts';

/**
 * DATABASE_READ_URL (issue 18): the dashboards' and exports' read pool logs in as the API's role,
 * so the verified scope (ADR 0009) and row-level security hold there exactly as on the main pool:
 * a kitchen manager's read through it sees only the units assigned to them, for every role.
 */
let h: ApiHarness;
let read: Database;
const lifecycle = createLifecycle(testLogger);
const sessions = new Map<Role, string>();
const expected: Record<Role, string[]> = {
  admin: ['rp-a', 'rp-b'],
  technician: ['rp-a', 'rp-b'],
  auditor: ['rp-a', 'rp-b'],
  kitchen_manager: ['rp-a'],
  collector: [],
};

beforeAll(async () => {
  h = await createApiHarness();
  const owner = h.t.database.pool;
  const { rows: sites } = await owner.query<{ id: string }>(
    `INSERT INTO sites (name) VALUES ('RP Site A'), ('RP Site B') RETURNING id`,
  );
  const { rows: units } = await owner.query<{ id: string }>(
    `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', 'rp A'), ($2, 'biodigester', 'rp B') RETURNING id`,
    [sites[0]!.id, sites[1]!.id],
  );
  await owner.query(
    `INSERT INTO devices (id, unit_id, kind) VALUES ('rp-a', $1, 'biodigester'), ('rp-b', $2, 'biodigester')`,
    [units[0]!.id, units[1]!.id],
  );
  for (const role of roles) {
    const username = `rp-${role.replace('_', '-')}`;
    const { user, password } = await createUserWithPassword(h, { username, role });
    if (role === 'kitchen_manager' || role === 'collector')
      await h.users.assignUnits(user.id, [units[0]!.id], systemActor);
    sessions.set(
      role,
      (
        await h.sessions.login(
          { username, password },
          { actorId: 'anonymous', actorRole: 'anonymous', ip: '127.0.0.1' },
        )
      ).sessionId,
    );
  }
  // The API's LOGIN role, as `thamani start` makes it on the primary (a replica has it too).
  const api = await openAsLoginRole(
    { client: owner, url: h.t.url },
    {
      kind: 'api',
      loginRole: API_LOGIN_ROLE,
      password: testRolePasswords.APP_DB_PASSWORD,
      poolMax: 1,
      logger: testLogger,
    },
  );
  await api.close();
  const config = loadConfig({
    DATABASE_URL: h.t.url,
    DATABASE_READ_URL: h.t.url,
    APP_DB_PASSWORD: testRolePasswords.APP_DB_PASSWORD,
    THAMANI_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'thamani-rp-')),
  });
  read = (await openReadDatabase(config, testLogger, lifecycle))!;
}, 120_000);

afterAll(() => lifecycle.stop('test done'));

const devicesThrough = (db: Database, secret: string): Promise<string[]> =>
  runScoped(db.db, { kind: 'session', secret }, async (tx) =>
    (await tx.execute<{ id: string }>(sql`SELECT id FROM devices ORDER BY id`)).rows.map(
      (r) => r.id,
    ),
  );

describe('the read pool (DATABASE_READ_URL)', () => {
  it('logs in as the API role, not as the owner', async () => {
    const { rows } = await read.pool.query<{ u: string; bypass: boolean }>(
      `SELECT current_user AS u, rolbypassrls AS bypass FROM pg_roles WHERE rolname = current_user`,
    );
    expect(rows).toEqual([{ u: API_LOGIN_ROLE, bypass: false }]);
  });

  it('sees nothing outside a verified scope (fails closed)', async () => {
    const { rows } = await read.pool.query(`SELECT id FROM devices`);
    expect(rows).toEqual([]);
  });

  it("limits every role's scoped read through it to what that role may see", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...roles), async (role) => {
        expect(await devicesThrough(read, sessions.get(role)!)).toEqual(expected[role]);
      }),
      { numRuns: 15 },
    );
  });

  it('is absent without DATABASE_READ_URL: pages and exports read the main pool', async () => {
    const config = loadConfig({
      DATABASE_URL: h.t.url,
      THAMANI_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'thamani-rp-')),
    });
    expect(await openReadDatabase(config, testLogger, lifecycle)).toBeUndefined();
    expect(() => loadConfig({ DATABASE_READ_URL: h.t.url, THAMANI_DATA_DIR: os.tmpdir() })).toThrow(
      /DATABASE_READ_URL: needs DATABASE_URL/,
    );
  });
});
