import type pg from 'pg';

/**
 * The API does not connect as the owner: it logs in as `loginRole`, a member of the NOLOGIN
 * group `thamani_app` (migration 0004), which is neither superuser nor owner and has no
 * BYPASSRLS, so row-level security and the audit grants apply to every API query.
 */
export async function ensureLoginRole(owner: pg.Pool | pg.Client, opts: { loginRole: string; password: string; group?: string }): Promise<void> {
  const group = opts.group ?? 'thamani_app';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(opts.loginRole)) throw new Error(`invalid role name ${opts.loginRole}`);
  const exists = await owner.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [opts.loginRole]);
  if (exists.rowCount === 0) {
    await owner.query(`CREATE ROLE ${opts.loginRole} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT`).catch((err: { code?: string }) => {
      if (err.code !== '42710' && err.code !== '23505') throw err; // created meanwhile by another process
    });
  }
  // ALTER ROLE takes no bind parameters; with standard_conforming_strings (the default since 9.1) doubling quotes suffices.
  const literal = `'${opts.password.replace(/'/g, "''")}'`;
  await owner.query(`ALTER ROLE ${opts.loginRole} WITH LOGIN NOSUPERUSER NOBYPASSRLS INHERIT PASSWORD ${literal}`);
  await owner.query(`GRANT ${group} TO ${opts.loginRole}`);
}

/** The owner's URL with another user and password. */
export function urlForRole(ownerUrl: string, role: string, password: string): string {
  const u = new URL(ownerUrl);
  u.username = role;
  u.password = encodeURIComponent(password);
  return u.toString();
}
