import type { Queryable } from './timeseries.ts';

/**
 * SQL of login-role administration (app/db-roles.ts decides which roles exist and why). Role
 * names are identifiers, which take no bind parameters: callers pass names checked against
 * `ROLE_NAME`, and the password is written as a literal with its quotes doubled (safe with
 * standard_conforming_strings, the default since 9.1).
 */
export const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

function checked(name: string): string {
  if (!ROLE_NAME.test(name)) throw new Error(`invalid role name ${name}`);
  return name;
}

export async function roleExists(q: Queryable, name: string): Promise<boolean> {
  return (await q.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rows.length > 0;
}

export async function createLoginRole(q: Queryable, name: string): Promise<void> {
  await q.query(
    `CREATE ROLE ${checked(name)} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT`,
  );
}

export async function setLoginRole(
  q: Queryable,
  name: string,
  opts: { bypassRls: boolean; password: string },
): Promise<void> {
  const literal = `'${opts.password.replace(/'/g, "''")}'`;
  await q.query(
    `ALTER ROLE ${checked(name)} WITH LOGIN NOSUPERUSER ${opts.bypassRls ? 'BYPASSRLS' : 'NOBYPASSRLS'} INHERIT PASSWORD ${literal}`,
  );
}

export async function grantRole(q: Queryable, group: string, name: string): Promise<void> {
  await q.query(`GRANT ${checked(group)} TO ${checked(name)}`);
}
