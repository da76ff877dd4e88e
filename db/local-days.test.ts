import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { zonedDayStart } from '../dashboards/csv-fns.ts';
import { addDays, localDay } from '../dashboards/gas-day-fns.ts';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import {
  ensurePartitions,
  hourPieces,
  rollup,
  timeseriesInfo,
  type TimeseriesInfo,
} from './timeseries.ts';

/**
 * A "day" of a chart or a summary is a calendar day of the configured zone, on either
 * time-series path: readings generated around local midnight, in zones whose offset is whole
 * hours (Nairobi), half hours (Kolkata, +5:30; St John's, -3:30 with DST) and quarter hours
 * (Kathmandu, +5:45), are each counted in the day the zone says, never in UTC's.
 */

let t: TestDatabase;
let info: TimeseriesInfo;
let unitId: string;
let n = 0;

beforeAll(async () => {
  t = await createTestDatabase();
  info = await timeseriesInfo(t.database.pool);
  await ensurePartitions(t.database.pool, info.mode, { aheadDays: 7, behindDays: 35 });
  const site = await t.database.pool.query<{ id: string }>(
    `INSERT INTO sites (name) VALUES ('Zones') RETURNING id`,
  );
  const unit = await t.database.pool.query<{ id: string }>(
    `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', 'Zoned') RETURNING id`,
    [site.rows[0]!.id],
  );
  unitId = unit.rows[0]!.id;
});

const zones = ['Africa/Nairobi', 'Asia/Kolkata', 'Asia/Kathmandu', 'America/St_Johns', 'UTC'];

describe('day buckets in the configured zone', () => {
  it('count each reading in the local day that holds it, on the fast path and the views', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...zones),
        fc.integer({ min: 3, max: 25 }),
        // Seconds from local midnight, within three hours either side, distinct.
        fc.uniqueArray(fc.integer({ min: -3 * 3600, max: 3 * 3600 - 1 }), {
          minLength: 1,
          maxLength: 40,
        }),
        async (zone, daysAgo, offsets) => {
          const device = `bd-zone-${++n}`;
          await t.database.pool.query(
            `INSERT INTO devices (id, unit_id, kind) VALUES ($1, $2, 'biodigester')`,
            [device, unitId],
          );
          const day = addDays(localDay(Date.now(), zone), -daysAgo);
          const midnight = zonedDayStart(day, zone).getTime();
          const stamps = offsets.map((s) => new Date(midnight + s * 1000));
          await t.database.pool.query(
            `INSERT INTO readings (ts, device_id, unit_id, seq, temperature_c)
             SELECT ts, $2, $3, row_number() OVER (), 30 FROM unnest($1::timestamptz[]) ts`,
            [stamps.map((s) => s.toISOString()), device, unitId],
          );
          const expected: Record<string, number> = {};
          for (const s of stamps)
            expected[localDay(s, zone)] = (expected[localDay(s, zone)] ?? 0) + 1;
          const query = {
            deviceId: device,
            from: zonedDayStart(addDays(day, -1), zone),
            to: zonedDayStart(addDays(day, 1), zone),
            bucket: 'day' as const,
            metrics: ['temperature_c' as const],
            timeZone: zone,
          };
          for (const opts of [{ mode: info.mode }, {}]) {
            const points = await rollup(t.database.pool, query, opts);
            const got: Record<string, number> = {};
            for (const p of points) {
              const d = localDay(p.bucket, zone);
              // Each bucket starts at the zone's midnight of its day.
              expect(p.bucket.getTime(), `${zone} ${d}`).toBe(zonedDayStart(d, zone).getTime());
              got[d] = p.values.temperature_c?.count ?? 0;
            }
            expect(got, `${zone} ${JSON.stringify(opts)}`).toEqual(expected);
          }
        },
      ),
      { numRuns: 40 },
    );
  }, 240_000);

  it('cut each hour at local midnight for daily sums: each reading’s flow counts in its own day', async () => {
    const HOUR = 3_600_000;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...zones),
        fc.integer({ min: 3, max: 25 }),
        fc.uniqueArray(
          fc.record({
            s: fc.integer({ min: -2 * 3600, max: 2 * 3600 - 1 }),
            lpm: fc.integer({ min: 1, max: 120 }),
          }),
          { minLength: 1, maxLength: 30, selector: (r) => r.s },
        ),
        async (zone, daysAgo, readings) => {
          // A unit of its own: pieces are per unit.
          const unit = await t.database.pool.query<{ id: string }>(
            `INSERT INTO units (site_id, kind, name) SELECT site_id, 'biodigester', $2 FROM units WHERE id = $1 RETURNING id`,
            [unitId, `Gas ${++n}`],
          );
          const unit2 = unit.rows[0]!.id;
          const device = `bd-gas-${n}`;
          await t.database.pool.query(
            `INSERT INTO devices (id, unit_id, kind) VALUES ($1, $2, 'biodigester')`,
            [device, unit2],
          );
          const day = addDays(localDay(Date.now(), zone), -daysAgo);
          const midnight = zonedDayStart(day, zone).getTime();
          const at = readings.map((r) => ({ ts: midnight + r.s * 1000, lpm: r.lpm }));
          await t.database.pool.query(
            `INSERT INTO readings (ts, device_id, unit_id, seq, gas_flow_lpm)
             SELECT ts, $3, $4, row_number() OVER (), lpm FROM unnest($1::timestamptz[], $2::float8[]) AS x(ts, lpm)`,
            [at.map((r) => new Date(r.ts).toISOString()), at.map((r) => r.lpm), device, unit2],
          );
          // Expected, by Intl: readings grouped by (hour, local day); each group counts its mean
          // × the minutes of that hour that lie in that day.
          const groups = new Map<
            string,
            { day: string; sum: number; n: number; minutes: number }
          >();
          for (const r of at) {
            const hour = Math.floor(r.ts / HOUR) * HOUR;
            const d = localDay(r.ts, zone);
            let minutes = 0;
            for (let m = 0; m < 60; m++) if (localDay(hour + m * 60_000, zone) === d) minutes++;
            const g = groups.get(`${hour} ${d}`) ?? { day: d, sum: 0, n: 0, minutes };
            g.sum += r.lpm;
            g.n += 1;
            groups.set(`${hour} ${d}`, g);
          }
          const expected: Record<string, number> = {};
          for (const g of groups.values())
            expected[g.day] = (expected[g.day] ?? 0) + (g.sum / g.n) * g.minutes;
          const range = {
            unitId: unit2,
            from: zonedDayStart(addDays(day, -1), zone),
            to: zonedDayStart(addDays(day, 1), zone),
            metric: 'gas_flow_lpm' as const,
            timeZone: zone,
          };
          for (const opts of [{ mode: info.mode }, {}]) {
            const got: Record<string, number> = {};
            for (const p of await hourPieces(t.database.pool, range, opts)) {
              const d = localDay(p.start, zone);
              got[d] = (got[d] ?? 0) + p.mean * p.minutes;
            }
            expect(Object.keys(got).sort(), `${zone} ${JSON.stringify(opts)}`).toEqual(
              Object.keys(expected).sort(),
            );
            for (const [d, litres] of Object.entries(expected))
              expect(got[d], `${zone} ${d} ${JSON.stringify(opts)}`).toBeCloseTo(litres, 6);
          }
        },
      ),
      { numRuns: 40 },
    );
  }, 240_000);
});
