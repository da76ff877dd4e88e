import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type pg from 'pg';
import { ensurePartitions, timeseriesInfo } from '../db/timeseries.ts';
import { mulberry32 } from '../simulators/random.ts';

/**
 * Generated fleets for site reports (issue 20): a site of 2–4 digesters over two days at a
 * 10-minute interval (288 slots, so a whole offline day stays cheap), each digester with one or
 * two devices, scattered missing readings, an offline day or span, quarantined payloads, an
 * optional failed flow calibration window, or no reading at all.
 */

export const FLEET_PERIOD = {
  start: new Date('2026-10-05T00:00:00Z'),
  end: new Date('2026-10-07T00:00:00Z'),
};
export const FLEET_INTERVAL_S = 600;
const SLOTS = (FLEET_PERIOD.end.getTime() - FLEET_PERIOD.start.getTime()) / 1000 / FLEET_INTERVAL_S;

export interface DigesterSpec {
  /** No reading at all in the period. */
  silent: boolean;
  devices: 1 | 2;
  seed: number;
  /** Per mille of slots missing at random. */
  missing: number;
  /** An offline span in slots: a whole day is [0 | 144, 144). */
  offline: { from: number; length: number };
  quarantined: number[];
  /** Slots of a failed flow calibration of the first device, or null. */
  failedCalibration: { from: number; length: number } | null;
}

export const digesterSpec: fc.Arbitrary<DigesterSpec> = fc.record({
  silent: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
  devices: fc.constantFrom(1 as const, 2 as const),
  seed: fc.integer(),
  missing: fc.integer({ min: 0, max: 300 }),
  offline: fc.oneof(
    fc.constantFrom({ from: 0, length: 144 }, { from: 144, length: 144 }),
    fc.record({
      from: fc.integer({ min: 0, max: SLOTS - 1 }),
      length: fc.integer({ min: 0, max: 40 }),
    }),
  ),
  quarantined: fc.uniqueArray(fc.integer({ min: 0, max: SLOTS - 1 }), { maxLength: 5 }),
  failedCalibration: fc.option(
    fc.record({
      from: fc.integer({ min: 0, max: SLOTS - 1 }),
      length: fc.integer({ min: 1, max: 30 }),
    }),
  ),
});

export interface SeededFleet {
  siteId: string;
  siteName: string;
  /** In the site report's order (unit id bytes). */
  units: { id: string; name: string; devices: string[]; spec: DigesterSpec }[];
}

export async function ensureFleetPartitions(pool: pg.Pool): Promise<void> {
  const mode = (await timeseriesInfo(pool)).mode;
  const behind = Math.ceil((Date.now() - FLEET_PERIOD.start.getTime()) / 86_400_000) + 8;
  await ensurePartitions(pool, mode, { aheadDays: 1, behindDays: Math.max(behind, 35) });
}

/** Inserts the site, its digesters, devices, readings and quarantine rows as the owner. */
export async function seedFleet(
  pool: pg.Pool,
  specs: readonly DigesterSpec[],
): Promise<SeededFleet> {
  const tag = randomUUID().slice(0, 8);
  const siteName = `fleet-${tag}`;
  const site = await pool.query<{ id: string }>(
    'INSERT INTO sites (name, county) VALUES ($1, $2) RETURNING id',
    [siteName, 'Nakuru'],
  );
  const siteId = site.rows[0]!.id;
  const units: SeededFleet['units'] = [];
  for (const [i, spec] of specs.entries()) {
    const name = `${siteName}-d${i}`;
    const unit = await pool.query<{ id: string }>(
      "INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', $2) RETURNING id",
      [siteId, name],
    );
    const unitId = unit.rows[0]!.id;
    // Two ids whose byte order ('-' < '_') differs from a dictionary collation's.
    const devices = [`${name}-m`, `${name.replace(/-/g, '_')}_g`].slice(0, spec.devices);
    for (const d of devices)
      await pool.query(
        "INSERT INTO devices (id, unit_id, kind, status, firmware_version) VALUES ($1, $2, 'biodigester', 'active', '2.0.0')",
        [d, unitId],
      );
    units.push({ id: unitId, name, devices, spec });
    if (spec.silent) continue;
    const rand = mulberry32(spec.seed);
    for (const [k, d] of devices.entries()) {
      const rows: {
        slot: number;
        flow: number;
        ch4: number | null;
        t: number | null;
        p: number | null;
      }[] = [];
      for (let s = 0; s < SLOTS; s += 1) {
        const roll = rand();
        if (s >= spec.offline.from && s < spec.offline.from + spec.offline.length) continue;
        if (roll * 1000 < spec.missing || spec.quarantined.includes(s)) continue;
        rows.push({
          slot: s,
          flow: 5 + 30 * rand(),
          ch4: rand() < 0.1 ? null : 50 + 15 * rand(),
          t: rand() < 0.2 ? null : 25 + 12 * rand(),
          p: rand() < 0.2 ? null : rand() * 2,
        });
      }
      if (rows.length === 0) continue;
      // The second device reports a few seconds after the first: a different instant, same slot.
      await pool.query(
        `INSERT INTO readings (ts, device_id, unit_id, seq, gas_flow_lpm, methane_pct, temperature_c, biogas_pressure_kpa)
         SELECT $1::timestamptz + make_interval(secs => s * ${FLEET_INTERVAL_S} + $9), $2, $3, s + 1, f, c, t, p
           FROM unnest($4::int[], $5::float8[], $6::float8[], $7::float8[], $8::float8[]) AS x(s, f, c, t, p)`,
        [
          FLEET_PERIOD.start,
          d,
          unitId,
          rows.map((r) => r.slot),
          rows.map((r) => r.flow),
          rows.map((r) => r.ch4),
          rows.map((r) => r.t),
          rows.map((r) => r.p),
          k * 7,
        ],
      );
    }
    for (const s of spec.quarantined)
      await pool.query(
        `INSERT INTO quarantine (device_id, unit_id, received_at, topic, payload, payload_size, seq, reasons)
         VALUES ($1, $2, $3::timestamptz + make_interval(secs => $4 * ${FLEET_INTERVAL_S} + 3), $5, '\\x7b7d', 2, $4, $6::jsonb)`,
        [
          devices[0],
          unitId,
          FLEET_PERIOD.start,
          s,
          `thamani/v1/devices/${devices[0]}/telemetry`,
          JSON.stringify([
            {
              field: 'gas_flow_lpm',
              code: s % 2 ? 'out_of_range' : 'bad_timestamp',
              message: 'test',
            },
          ]),
        ],
      );
  }
  units.sort((a, b) => (a.id < b.id ? -1 : 1));
  return { siteId, siteName, units };
}

/** The instant of a slot. */
export const slotTime = (s: number): Date =>
  new Date(FLEET_PERIOD.start.getTime() + s * FLEET_INTERVAL_S * 1000);
