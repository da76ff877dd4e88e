import type pg from 'pg';
import { createDatabase, type Database } from '../db/client.ts';
import { createLoginRole, grantRole, ROLE_NAME, roleExists, setLoginRole } from '../db/roles.ts';
import type { Logger } from 'pino';

/**
 * Neither the API nor ingest connects as the owner. The API logs in as `loginRole`, a member of
 * the NOLOGIN group `thamani_app` (migration 0007), which is neither superuser nor owner and has
 * no BYPASSRLS, so row-level security and the audit grants apply to every API query. Ingest logs
 * in as a member of `thamani_ingest` (INSERT/SELECT on readings, migrations 0007 and 0014) with
 * `bypassRls`: PostgreSQL refuses COPY FROM into a table with row security unless the role
 * bypasses it, and ingest writes every unit's readings anyway; its grants are what limit it.
 */
async function ensureLoginRole(
  owner: pg.Pool | pg.Client,
  opts: { loginRole: string; password: string; group: string; bypassRls: boolean },
): Promise<void> {
  if (!ROLE_NAME.test(opts.loginRole)) throw new Error(`invalid role name ${opts.loginRole}`);
  if (!(await roleExists(owner, opts.loginRole))) {
    await createLoginRole(owner, opts.loginRole).catch((err: { code?: string }) => {
      if (err.code !== '42710' && err.code !== '23505') throw err; // created meanwhile by another process
    });
  }
  await setLoginRole(owner, opts.loginRole, {
    bypassRls: opts.bypassRls,
    password: opts.password,
  }).catch((err: { code?: string }) => {
    // Only a superuser may set (NO)SUPERUSER and (NO)BYPASSRLS.
    if (err.code === '42501')
      throw new Error(
        `the database owner may not set the attributes of ${opts.loginRole}: it must be a superuser (docs/operations.md, "Database roles")`,
        { cause: err },
      );
    throw err;
  });
  await grantRole(owner, opts.group, opts.loginRole);
}

/** The groups a login role joins: the API's (row security applies) and ingest's (append only). */
const kinds = {
  api: { group: 'thamani_app', bypassRls: false },
  ingest: { group: 'thamani_ingest', bypassRls: true },
} as const;

/**
 * Creates or updates `loginRole` (as the owner, on `owner.url`'s database) as a member of its
 * kind's group, and opens a pool logged in as it.
 */
export async function openAsLoginRole(
  owner: { client: pg.Pool | pg.Client; url: string },
  opts: {
    kind: keyof typeof kinds;
    loginRole: string;
    password: string;
    poolMax: number;
    logger: Logger;
    applicationName?: string;
  },
): Promise<Database> {
  await ensureLoginRole(owner.client, {
    loginRole: opts.loginRole,
    password: opts.password,
    ...kinds[opts.kind],
  });
  return createDatabase({
    url: urlForRole(owner.url, opts.loginRole, opts.password),
    poolMax: opts.poolMax,
    logger: opts.logger,
    ...(opts.applicationName ? { applicationName: opts.applicationName } : {}),
  });
}

/** The owner's URL with another user and password. */
export function urlForRole(ownerUrl: string, role: string, password: string): string {
  const u = new URL(ownerUrl);
  u.username = role;
  u.password = encodeURIComponent(password);
  return u.toString();
}
