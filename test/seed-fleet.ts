import type pg from 'pg';
import { createAlertService } from '../dashboards/alert-service.ts';
import { testLogger } from './db.ts';

const MIN = 60_000;

/** Names the seed gives its sites, units and devices (proper nouns in any language). */
export const SEEDED_NAMES = ['Shule ya Upendo', 'Mama Ngina', 'Lango', 'bd-seed-1', 'cp-seed-1'];

/**
 * A small fleet in every state a page shows: a digester with fresh values and one stale, a
 * collection point whose sensor is offline with a revoked certificate, open and closed alerts
 * (repeats grouped), a firmware release and a rollout, 30 hours of chart history, a quarantined
 * payload. Written by the owner (as the ingest and the CLI would).
 */
export async function seedFleet(owner: pg.Pool) {
  await createAlertService({ pool: owner, logger: testLogger, notify: false }).ensureDefaults();
  const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
  const one = async (sql: string, params: unknown[] = []) =>
    (await owner.query<{ id: string }>(sql, params)).rows[0]!.id;
  const site = await one(`INSERT INTO sites (name) VALUES ('Shule ya Upendo') RETURNING id`);
  const digester = await one(
    `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', 'Mama Ngina') RETURNING id`,
    [site],
  );
  const bin = await one(
    `INSERT INTO units (site_id, kind, name) VALUES ($1, 'collection_point', 'Lango') RETURNING id`,
    [site],
  );
  await owner.query(
    `INSERT INTO devices (id, unit_id, kind, status, online, last_seen_at, firmware_version) VALUES
       ('bd-seed-1', $1, 'biodigester', 'active', true, $3, '1.4.2'),
       ('cp-seed-1', $2, 'collection_point', 'active', false, $4, '2.0.0')`,
    [digester, bin, ago(30_000), ago(19 * MIN)],
  );
  const latest = async (
    device: string,
    unit: string,
    at: string,
    values: Record<string, number>,
  ) => {
    for (const [metric, value] of Object.entries(values))
      await owner.query(
        `INSERT INTO latest_readings (device_id, metric, unit_id, ts, value) VALUES ($1, $2, $3, $4, $5)`,
        [device, metric, unit, at, value],
      );
  };
  await latest('bd-seed-1', digester, ago(30_000), {
    temperature_c: 35.2,
    ph: 7.1,
    biogas_pressure_kpa: 4.1,
    methane_pct: 61,
    gas_flow_lpm: 3.5,
    slurry_level_pct: 74,
    battery_v: 3.4,
    rssi_dbm: -70,
  });
  await latest('bd-seed-1', digester, ago(40 * MIN), { h2s_ppm: 310 });
  await latest('cp-seed-1', bin, ago(19 * MIN), {
    fill_level_pct: 86,
    weight_kg: 55,
    lid_open: 1,
    temperature_c: 24,
    battery_v: 3.8,
  });
  await owner.query(
    `INSERT INTO certificates (serial, device_id, fingerprint_sha256, not_before, not_after, status, revoked_at, issued_by, pem) VALUES
       ('0a11', 'bd-seed-1', 'fp-seed-active', now() - interval '10 days', now() + interval '20 days', 'active', NULL, 'admin', 'x'),
       ('0b22', 'cp-seed-1', 'fp-seed-revoked', now() - interval '10 days', now() + interval '355 days', 'revoked', now() - interval '1 hour', 'admin', 'x')`,
  );
  await owner.query(
    `INSERT INTO readings (ts, device_id, unit_id, seq, temperature_c, ph, biogas_pressure_kpa, methane_pct, gas_flow_lpm, slurry_level_pct, h2s_ppm)
     SELECT date_trunc('hour', now()) - make_interval(hours => g), 'bd-seed-1', $1, 100 - g, 35, 7.1, 4, 60, 3, 75, 300 FROM generate_series(1, 30) g`,
    [digester],
  );
  await owner.query(
    `INSERT INTO firmware_images (sha256, device_kind, version, size, image, uploaded_by, approved_by, approved_at) VALUES ('${'cd'.repeat(32)}', 'biodigester', '1.5.0', 4, '\\x00010203', 'fundi', 'admin', now()),
       ('${'ef'.repeat(32)}', 'collection_point', '2.1.0', 4, '\\x00010203', 'fundi', NULL, NULL)`,
  );
  const rollout = await one(
    `INSERT INTO firmware_rollouts (image_sha256, target, wave_size, failure_threshold, manifest_ttl_hours, created_by) VALUES ('${'cd'.repeat(32)}', '{}', 5, 0.2, 72, 'fundi') RETURNING id`,
  );
  await owner.query(
    `INSERT INTO firmware_rollout_devices (rollout_id, device_id, wave, status, from_version) VALUES ($1, 'bd-seed-1', 1, 'sent', '1.4.2')`,
    [rollout],
  );
  await owner.query(
    `INSERT INTO alerts (rule_id, device_id, unit_id, severity, status, opened_at, closed_at, open_value) VALUES
       ('collection_point.device.offline', 'cp-seed-1', $2, 'warning', 'open', now() - interval '4 minutes', NULL, 19),
       ('collection_point.fill_level_pct.high', 'cp-seed-1', $2, 'warning', 'open', now() - interval '30 minutes', NULL, 86),
       ('biodigester.ph.low', 'bd-seed-1', $1, 'warning', 'open', now() - interval '10 minutes', NULL, 6.7),
       ('biodigester.battery_v.low', 'bd-seed-1', $1, 'critical', 'open', now() - interval '1 hour', NULL, 3.2),
       ('biodigester.ph.low', 'bd-seed-1', $1, 'warning', 'closed', now() - interval '3 hours', now() - interval '2 hours', 6.6),
       ('biodigester.ph.low', 'bd-seed-1', $1, 'warning', 'closed', now() - interval '5 hours', now() - interval '4 hours', 6.7)`,
    [digester, bin],
  );
  return { site, digester, bin, rollout, devices: ['bd-seed-1', 'cp-seed-1'] };
}
