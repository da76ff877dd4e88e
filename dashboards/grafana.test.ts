import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';

/**
 * The shipped Grafana dashboard is not a dead file: every query in it (panels and variables) runs
 * against a migrated database as thamani_readonly, the role its data source logs in with, after
 * Grafana's macros are expanded the way its PostgreSQL data source expands them.
 */
interface Target {
  rawSql: string;
  refId: string;
}
const dashboard = JSON.parse(
  readFileSync(new URL('./grafana/thamani-digesters.json', import.meta.url), 'utf8'),
) as {
  uid: string;
  panels: { title: string; targets: Target[]; datasource: { uid: string } }[];
  templating: { list: { name: string; query: string }[] };
};

let t: TestDatabase;
let unitId: string;

function expand(sql: string): string {
  return sql
    .replace(
      /\$__timeGroupAlias\((\w+), \$__interval\)/g,
      "date_bin(interval '1 hour', $1, TIMESTAMPTZ '2000-01-01') AS time",
    )
    .replace(/\$__timeFilter\((\w+)\)/g, "$1 BETWEEN now() - interval '7 days' AND now()")
    .replace(/\$unit/g, unitId)
    .replace(/\$site/g, 'Grafana School');
}

async function asReadonly(sql: string) {
  const client = await t.database.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL ROLE thamani_readonly');
    return (await client.query<Record<string, unknown>>(sql)).rows;
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

beforeAll(async () => {
  t = await createTestDatabase();
  const q = t.database.pool;
  const site = (
    await q.query<{ id: string }>(`INSERT INTO sites (name) VALUES ('Grafana School') RETURNING id`)
  ).rows[0]!.id;
  unitId = (
    await q.query<{ id: string }>(
      `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', 'D1') RETURNING id`,
      [site],
    )
  ).rows[0]!.id;
  await q.query(
    `INSERT INTO devices (id, unit_id, kind, status, online) VALUES ('bd-graf-1', $1, 'biodigester', 'active', true)`,
    [unitId],
  );
  await q.query(
    `INSERT INTO readings (ts, device_id, unit_id, seq, temperature_c, ph, biogas_pressure_kpa, methane_pct, gas_flow_lpm, slurry_level_pct, h2s_ppm)
     SELECT now() - make_interval(mins => g * 10), 'bd-graf-1', $1, 1000 - g, 35, 7.1, 4, 60, 10, 75, 300 FROM generate_series(1, 300) g`,
    [unitId],
  );
  await q.query(
    `INSERT INTO latest_readings (device_id, metric, unit_id, ts, value) VALUES ('bd-graf-1', 'temperature_c', $1, now(), 35), ('bd-graf-1', 'battery_v', $1, now(), 3.9)`,
    [unitId],
  );
  await q.query(
    `INSERT INTO alert_rules (id, unit_kind, metric, condition, warn, critical, clear, title) VALUES ('biodigester.ph.low', 'biodigester', 'ph', 'below', 6.8, 6.5, 6.9, 'pH low')`,
  );
  await q.query(
    `INSERT INTO alerts (rule_id, device_id, unit_id, severity, opened_at, open_value) VALUES ('biodigester.ph.low', 'bd-graf-1', $1, 'warning', now(), 6.7)`,
    [unitId],
  );
});

describe('the provisioned Grafana dashboard', () => {
  it('uses the provisioned data source everywhere', () => {
    expect(dashboard.uid).toBe('thamani-digesters');
    for (const p of dashboard.panels) expect(p.datasource.uid, p.title).toBe('thamani-timescaledb');
  });

  it.each(dashboard.templating.list.map((v) => [v.name, v.query] as const))(
    'variable $%s runs as thamani_readonly',
    async (_name, query) => {
      expect((await asReadonly(expand(query))).length).toBeGreaterThan(0);
    },
  );

  it.each(dashboard.panels.flatMap((p) => p.targets.map((tg) => [p.title, tg.rawSql] as const)))(
    'panel "%s" runs as thamani_readonly and returns data',
    async (_title, sql) => {
      const rows = await asReadonly(expand(sql));
      expect(rows.length).toBeGreaterThan(0);
    },
  );

  it('cannot read what the read-only role must not see', async () => {
    for (const table of [
      'users',
      'sessions',
      'api_tokens',
      'audit_log',
      'certificates',
      'enrolment_tokens',
      'quarantine',
    ]) {
      await expect(asReadonly(`SELECT 1 FROM ${table} LIMIT 1`), table).rejects.toThrow(
        /permission denied/,
      );
    }
    await expect(asReadonly(`DELETE FROM readings`)).rejects.toThrow(/permission denied/);
  });
});
