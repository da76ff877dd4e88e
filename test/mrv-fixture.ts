import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { ensurePartitions, timeseriesInfo } from '../db/timeseries.ts';

/**
 * A month of 1-minute readings with known physics for one digester (tests and `npm run bench -- mrv`):
 * smooth daily cycles, one offline day, scattered missing minutes, quarantined minutes (not in
 * readings, recorded in quarantine with a reason), rows lacking pressure or temperature, and a
 * second device whose id orders differently in byte and in dictionary collation.
 */

export const MONTH = {
  start: new Date('2026-10-01T00:00:00Z'),
  end: new Date('2026-11-01T00:00:00Z'),
  minutes: 31 * 1440,
};
export const OFFLINE_DAY = 9; // 2026-10-10, the whole day

export interface MinuteSample {
  minute: number;
  flow: number;
  methane?: number;
  temperature?: number;
  pressure?: number;
}

export function isQuarantined(i: number): boolean {
  return i % 1000 === 500;
}

export function quarantineCode(i: number): string {
  return i % 2000 === 500 ? 'out_of_range' : 'bad_timestamp';
}

/** The samples that reach `readings` (gaps, the offline day and quarantined minutes left out). */
export function* physics(minutes = MONTH.minutes): Generator<MinuteSample> {
  for (let i = 0; i < minutes; i += 1) {
    if (Math.floor(i / 1440) === OFFLINE_DAY) continue;
    if ((i * 2654435761) % 4099 < 40) continue; // ~1 % scattered missing minutes
    if (isQuarantined(i)) continue;
    const day = (2 * Math.PI * i) / 1440;
    yield {
      minute: i,
      flow: 20 + 10 * Math.sin(day) + (i % 7) * 0.1,
      ...(i % 30 === 11 ? {} : { methane: 55 + 5 * Math.cos(2 * day) }),
      ...(i % 15 === 7 ? {} : { temperature: 32 + 3 * Math.sin(day) }),
      ...(i % 10 === 3 ? {} : { pressure: 1.2 + 0.3 * Math.sin(4 * day) }),
    };
  }
}

export interface DigesterFixture {
  siteId: string;
  unitId: string;
  deviceId: string;
  otherDeviceId: string;
  readings: number;
}

/** Inserts site, unit, devices, readings and quarantine records as the owner (ingest's path is not the subject). */
export async function seedDigesterMonth(
  pool: pg.Pool,
  opts: { name?: string; minutes?: number } = {},
): Promise<DigesterFixture> {
  const name = opts.name ?? `mrv-${randomUUID().slice(0, 8)}`;
  const mode = (await timeseriesInfo(pool)).mode;
  // October is behind the partition window kept ahead of now: make its weeks (no-op on a hypertable).
  const behind = Math.ceil((Date.now() - MONTH.start.getTime()) / 86_400_000) + 8;
  await ensurePartitions(pool, mode, { aheadDays: 1, behindDays: Math.max(behind, 35) });
  const site = await pool.query<{ id: string }>(
    'INSERT INTO sites (name, county) VALUES ($1, $2) RETURNING id',
    [`${name} school`, 'Kiambu'],
  );
  const unit = await pool.query<{ id: string }>(
    "INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', $2) RETURNING id",
    [site.rows[0]!.id, `${name} digester`],
  );
  const unitId = unit.rows[0]!.id;
  const deviceId = `${name}-01`;
  const otherDeviceId = `${name.replace(/-/g, '_')}_00`;
  for (const id of [deviceId, otherDeviceId]) {
    await pool.query(
      "INSERT INTO devices (id, unit_id, kind, status, firmware_version) VALUES ($1, $2, 'biodigester', 'active', '1.4.2')",
      [id, unitId],
    );
  }
  let batch: MinuteSample[] = [];
  let readings = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    await pool.query(
      `INSERT INTO readings (ts, device_id, unit_id, seq, gas_flow_lpm, methane_pct, temperature_c, biogas_pressure_kpa, battery_v)
       SELECT $1::timestamptz + make_interval(mins => m), $2, $3, m + 1, f, c, t, p, 3.7
         FROM unnest($4::int[], $5::float8[], $6::float8[], $7::float8[], $8::float8[]) AS x(m, f, c, t, p)`,
      [
        MONTH.start,
        deviceId,
        unitId,
        batch.map((s) => s.minute),
        batch.map((s) => s.flow),
        batch.map((s) => s.methane ?? null),
        batch.map((s) => s.temperature ?? null),
        batch.map((s) => s.pressure ?? null),
      ],
    );
    readings += batch.length;
    batch = [];
  };
  for (const s of physics(opts.minutes)) {
    batch.push(s);
    if (batch.length === 5000) await flush();
  }
  await flush();
  // The second device: H2S only, every 10 minutes of the first day.
  const other = await pool.query(
    `INSERT INTO readings (ts, device_id, unit_id, seq, h2s_ppm) SELECT $1::timestamptz + make_interval(mins => m * 10), $2, $3, m + 1, 150 + m FROM generate_series(0, 143) m`,
    [MONTH.start, otherDeviceId, unitId],
  );
  readings += other.rowCount ?? 0;
  const quarantined = [...Array(opts.minutes ?? MONTH.minutes).keys()].filter(
    (i) => isQuarantined(i) && Math.floor(i / 1440) !== OFFLINE_DAY,
  );
  for (const i of quarantined) {
    await pool.query(
      `INSERT INTO quarantine (device_id, unit_id, received_at, topic, payload, payload_size, seq, reasons)
       VALUES ($1, $2, $3::timestamptz + make_interval(mins => $4) + interval '2 seconds', $5, '\\x7b7d', 2, $4, $6::jsonb)`,
      [
        deviceId,
        unitId,
        MONTH.start,
        i,
        `thamani/v1/devices/${deviceId}/telemetry`,
        JSON.stringify([{ field: 'gas_flow_lpm', code: quarantineCode(i), message: 'test' }]),
      ],
    );
  }
  return { siteId: site.rows[0]!.id, unitId, deviceId, otherDeviceId, readings };
}
