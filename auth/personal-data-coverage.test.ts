import { beforeAll, describe, expect, it } from 'vitest';
import { createApiHarness, createUserWithPassword, type ApiHarness } from '../test/api-harness.ts';
import { exportedRecords, notExported, sourceKey } from './personal-records.ts';

/**
 * The personal-data export covers every column that refers to a user (issue 19): read from the
 * migrated database's own schema (foreign keys to users, and the actor-id columns by their
 * naming: `*_by`, `*_by_id`, `actor_id`, `user_id`, `owner_id`), not from a list kept by hand.
 * A column found there must be exported (auth/personal-records.ts) or be in its reasoned
 * allow-list; and the export really carries a row recorded under each exported column.
 */
let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness();
}, 120_000);

async function userColumns(): Promise<string[]> {
  const pool = h.t.database.pool;
  const fks = await pool.query<{ t: string; c: string }>(
    `SELECT kcu.table_name AS t, kcu.column_name AS c
       FROM information_schema.referential_constraints rc
       JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = rc.constraint_name
       JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = rc.unique_constraint_name
      WHERE ccu.table_name = 'users' AND kcu.table_schema = 'public'`,
  );
  const named = await pool.query<{ t: string; c: string }>(
    `SELECT c.table_name AS t, c.column_name AS c
       FROM information_schema.columns c
       JOIN information_schema.tables t USING (table_schema, table_name)
      WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
        AND c.column_name ~ '(_by|_by_id|^actor_id|^user_id|^owner_id)$'`,
  );
  return [...new Set([...fks.rows, ...named.rows].map((r) => `${r.t}.${r.c}`))].sort();
}

describe('personal-data export: every column that refers to a user', () => {
  it('is exported or allow-listed with a reason', async () => {
    const found = await userColumns();
    expect(found.length).toBeGreaterThan(5);
    const covered = new Set([...exportedRecords.map(sourceKey), ...Object.keys(notExported)]);
    expect(found.filter((c) => !covered.has(c))).toEqual([]);
    // And nothing listed that the schema does not have (a renamed column would hide there).
    expect([...covered].filter((c) => c !== 'users.id' && !found.includes(c))).toEqual([]);
  });

  it('the export carries what the person recorded (feedings, collections) and not what others did', async () => {
    const pool = h.t.database.pool;
    const password = 'correct horse battery staple';
    const { user } = await createUserWithPassword(h, {
      username: 'export-me',
      role: 'admin',
      password,
    });
    const site = (
      await pool.query<{ id: string }>(`INSERT INTO sites (name) VALUES ('Export') RETURNING id`)
    ).rows[0]!.id;
    const unit = async (kind: string) =>
      (
        await pool.query<{ id: string }>(
          `INSERT INTO units (site_id, kind, name) VALUES ($1, $2, $3) RETURNING id`,
          [site, kind, `export ${kind}`],
        )
      ).rows[0]!.id;
    const [digester, point] = [await unit('biodigester'), await unit('collection_point')];
    for (const who of [user.id, 'someone-else']) {
      await pool.query(
        `INSERT INTO feedings (unit_id, fed_at, kg, note, recorded_by) VALUES ($1, now(), 12.5, $2, $3)`,
        [digester, `fed by ${who}`, who],
      );
      await pool.query(
        `INSERT INTO collections (unit_id, collected_at, weight_kg, note, collected_by) VALUES ($1, now(), 40, $2, $3)`,
        [point, `collected by ${who}`, who],
      );
    }
    const login = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: 'export-me', password },
    });
    const set = login.headers['set-cookie'];
    const cookie = ((Array.isArray(set) ? set[0] : set) as string).split(';')[0]!;
    const res = await h.app.inject({
      method: 'GET',
      url: '/api/v1/me/export',
      headers: { cookie },
    });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ records: Record<string, { note?: string }[]> }>();
    expect(Object.keys(body.records).sort()).toEqual(exportedRecords.map(sourceKey).sort());
    expect(body.records['feedings.recorded_by']!.map((r) => r.note)).toEqual([`fed by ${user.id}`]);
    expect(body.records['collections.collected_by']!.map((r) => r.note)).toEqual([
      `collected by ${user.id}`,
    ]);
    // No credential verifier travels: no binary column, no hash.
    expect(res.body).not.toMatch(/token_hash|password_hash|"type":"Buffer"/);
  });
});
