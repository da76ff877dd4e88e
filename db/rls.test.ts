import pg from 'pg';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { createApiHarness, createUserWithPassword, type ApiHarness } from '../test/api-harness.ts';

/**
 * Scope is enforced in the database: raw SQL as the API's login role, with the settings a
 * request transaction would set, sees nothing of another site.
 */
let h: ApiHarness;
let unitA: string;
let unitB: string;
let managerA: string;
let siteB: string;
let managerSession: string;

beforeAll(async () => {
  h = await createApiHarness();
  const owner = h.t.database.pool;
  const { rows: sites } = await owner.query(
    `INSERT INTO sites (name) VALUES ('Site A'), ('Site B') RETURNING id`,
  );
  siteB = sites[1].id;
  const { rows: units } = await owner.query(
    `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', 'bio A'), ($2, 'biodigester', 'bio B'), ($1, 'collection_point', 'cp A') RETURNING id`,
    [sites[0].id, sites[1].id],
  );
  [unitA, unitB] = [units[0].id, units[1].id];
  await owner.query(
    `INSERT INTO devices (id, unit_id, kind) VALUES ('dev-a', $1, 'biodigester'), ('dev-b', $2, 'biodigester')`,
    [unitA, unitB],
  );
  const now = new Date();
  await owner.query(
    `INSERT INTO readings (ts, device_id, unit_id, seq, temperature_c) VALUES ($1, 'dev-a', $2, 1, 35), ($1, 'dev-b', $3, 1, 36)`,
    [now, unitA, unitB],
  );
  const made = await createUserWithPassword(h, { username: 'manager-a', role: 'kitchen_manager' });
  managerA = made.user.id;
  await h.users.assignUnits(managerA, [unitA, units[2].id], {
    actorId: 'system',
    actorRole: 'system',
  });
  managerSession = (
    await h.sessions.login(
      { username: 'manager-a', password: made.password },
      { actorId: 'anonymous', actorRole: 'anonymous', ip: '127.0.0.1' },
    )
  ).sessionId;
});

/**
 * Raw SQL as the API's login role, in a transaction whose scope the database verified from a
 * credential: a session secret (`session`), an API token (`token`), or none at all.
 */
async function asApiRole<T>(
  credential: { session?: string; token?: string },
  fn: (c: pg.Client) => Promise<T>,
): Promise<T> {
  const c = new pg.Client({ connectionString: h.apiUrl });
  await c.connect();
  try {
    await c.query('BEGIN');
    if (credential.session) await c.query(`SELECT thamani_enter_session($1)`, [credential.session]);
    if (credential.token) await c.query(`SELECT thamani_enter_api_token($1)`, [credential.token]);
    const result = await fn(c);
    await c.query('ROLLBACK');
    return result;
  } finally {
    await c.end();
  }
}

/**
 * `readings` (and its rollups) are read through RLS where PostgreSQL allows it. On TimescaleDB,
 * whose hypertables and continuous aggregates refuse row security, 0007_security fails closed:
 * the API role may not read them at all and reads the scoped_* views instead. Either way the
 * answer for a caller is "only my units": this returns what the caller can get from `relation`,
 * proving in the second case that the direct read is denied.
 */
async function visible(c: pg.Client, relation: string): Promise<string[]> {
  try {
    await c.query('SAVEPOINT probe');
    const { rows } = await c.query<{ device_id: string }>(`SELECT device_id FROM ${relation}`);
    await c.query('RELEASE SAVEPOINT probe');
    return rows.map((r) => r.device_id);
  } catch (err) {
    await c.query('ROLLBACK TO SAVEPOINT probe');
    if ((err as { code?: string }).code !== '42501' || inject('timescaleExpected') !== true)
      throw err;
    const { rows } = await c.query<{ device_id: string }>(
      `SELECT device_id FROM scoped_${relation}`,
    );
    return rows.map((r) => r.device_id);
  }
}

describe('row-level security', () => {
  it('connects as a role that is neither superuser nor owner nor BYPASSRLS', async () => {
    const c = new pg.Client({ connectionString: h.apiUrl });
    await c.connect();
    const { rows } = await c.query(
      `SELECT r.rolsuper, r.rolbypassrls, (SELECT count(*) FROM pg_tables WHERE tableowner = current_user)::int AS owned,
              has_table_privilege('readings', 'UPDATE') OR has_table_privilege('readings', 'DELETE') AS rewrites_readings,
              has_table_privilege('audit_log', 'UPDATE') OR has_table_privilege('audit_log', 'DELETE') AS rewrites_audit,
              (SELECT count(*) FROM pg_class WHERE relispartition AND has_table_privilege(oid, 'SELECT'))::int AS readable_partitions
       FROM pg_roles r WHERE r.rolname = current_user`,
    );
    await c.end();
    expect(rows[0]).toEqual({
      rolsuper: false,
      rolbypassrls: false,
      owned: 0,
      rewrites_readings: false,
      rewrites_audit: false,
      readable_partitions: 0,
    });
  });

  it('a kitchen manager of site A sees nothing of site B, in any table or rollup', async () => {
    const seen = await asApiRole({ session: managerSession }, async (c) => ({
      sites: (await c.query<{ name: string }>(`SELECT name FROM sites ORDER BY name`)).rows.map(
        (r) => r.name,
      ),
      units: (await c.query<{ name: string }>(`SELECT name FROM units ORDER BY name`)).rows.map(
        (r) => r.name,
      ),
      devices: (await c.query<{ id: string }>(`SELECT id FROM devices ORDER BY id`)).rows.map(
        (r) => r.id,
      ),
      readings: await visible(c, 'readings'),
      scopedReadings: (
        await c.query<{ device_id: string }>(`SELECT device_id FROM scoped_readings`)
      ).rows.map((r) => r.device_id),
      hourly: await visible(c, 'readings_hourly'),
      scopedHourly: (
        await c.query<{ device_id: string }>(`SELECT device_id FROM scoped_readings_hourly`)
      ).rows.map((r) => r.device_id),
      scopedDaily: (
        await c.query<{ device_id: string }>(`SELECT device_id FROM scoped_readings_daily`)
      ).rows.map((r) => r.device_id),
      siteBById: (
        await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM units WHERE site_id = $1`, [
          siteB,
        ])
      ).rows[0]!.n,
    }));
    // A kitchen manager sees biodigesters only, so not the collection point of site A either.
    expect(seen).toEqual({
      sites: ['Site A'],
      units: ['bio A'],
      devices: ['dev-a'],
      readings: ['dev-a'],
      scopedReadings: ['dev-a'],
      hourly: ['dev-a'],
      scopedHourly: ['dev-a'],
      scopedDaily: ['dev-a'],
      siteBById: 0,
    });
  });

  it('a technician sees the whole fleet; no role or an unknown actor sees nothing', async () => {
    expect(
      await asApiRole(
        { token: await h.tokenFor('technician') },
        async (c) =>
          (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM devices`)).rows[0]!.n,
      ),
    ).toBe(2);
    expect(await asApiRole({}, async (c) => (await visible(c, 'readings')).length)).toBe(0);
    expect(
      await asApiRole(
        { session: 'not-a-session' },
        async (c) =>
          (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM devices`)).rows[0]!.n,
      ),
    ).toBe(0);
  });

  it('a kitchen manager cannot write devices, and nobody on the API role may rewrite the audit log', async () => {
    await expect(
      asApiRole({ session: managerSession }, (c) =>
        c
          .query(`UPDATE devices SET status = 'retired' WHERE id = 'dev-a' RETURNING id`)
          .then((r) => r.rowCount),
      ),
    ).resolves.toBe(0);
    const admin = await h.tokenFor('admin');
    await expect(
      asApiRole({ token: admin }, (c) => c.query(`DELETE FROM audit_log`)),
    ).rejects.toThrow(/permission denied/);
    await expect(
      asApiRole({ token: admin }, (c) => c.query(`UPDATE audit_log SET action = 'x'`)),
    ).rejects.toThrow(/permission denied/);
  });
});
