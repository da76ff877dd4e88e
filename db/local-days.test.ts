import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { zonedDayStart } from '../dashboards/csv-fns.ts';
import { addDays, localDay } from '../dashboards/gas-day-fns.ts';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { ensurePartitions, rollup, timeseriesInfo, type TimeseriesInfo } from './timeseries.ts';

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
});
