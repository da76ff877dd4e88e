import { inject, describe, expect, it, beforeAll } from 'vitest';
import { sql } from 'drizzle-orm';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import {
  ensurePartitions,
  expireRawReadings,
  rollup,
  timeseriesInfo,
  type TimeseriesInfo,
} from './timeseries.ts';
import { devices, sites, units } from './schema/index.ts';

let t: TestDatabase;
let info: TimeseriesInfo;
let unitId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  info = await timeseriesInfo(t.database.pool);
  const [site] = await t.database.db.insert(sites).values({ name: 'Kisumu Girls' }).returning();
  const [unit] = await t.database.db
    .insert(units)
    .values({ siteId: site!.id, kind: 'biodigester', name: 'Digester 1' })
    .returning();
  unitId = unit!.id;
  await t.database.db.insert(devices).values([
    { id: 'bd-temp-01', unitId, kind: 'biodigester' },
    { id: 'bd-gas-01', unitId, kind: 'biodigester' },
  ]);
});

/** The view-based rollup and the mode's fast path must give the same answer (to rounding). */
async function both(query: Parameters<typeof rollup>[1]) {
  const rounded = (points: Awaited<ReturnType<typeof rollup>>) =>
    points.map((p) => ({
      bucket: p.bucket,
      values: Object.fromEntries(
        Object.entries(p.values).map(([m, v]) => [
          m,
          v && { ...v, avg: Number(v.avg.toPrecision(12)) },
        ]),
      ),
    }));
  const viaViews = await rollup(t.database.pool, query);
  expect(rounded(await rollup(t.database.pool, query, { mode: info.mode }))).toEqual(
    rounded(viaViews),
  );
  return viaViews;
}

describe('time-series path', () => {
  it('matches what the server offers: hypertable with TimescaleDB, partitions without', () => {
    expect(info.mode).toBe(inject('timescaleExpected') ? 'hypertable' : 'partitioned');
    if (info.mode === 'hypertable') {
      expect(info.timescaleVersion).toMatch(/^\d+\.\d+/);
      // The Timescale License build: compression segmented by device and continuous aggregates.
      expect(info.compression).toBe(true);
      expect(info.continuousAggregates).toBe(true);
    } else {
      expect(info.continuousAggregates).toBe(false);
    }
  });

  it('keeps partitions ahead of time (and the hypertable needs none)', async () => {
    const made = await ensurePartitions(t.database.pool, info.mode, {
      aheadDays: 70,
      behindDays: 35,
    });
    if (info.mode === 'hypertable') {
      expect(made).toBe(0);
      return;
    }
    expect(made).toBeGreaterThan(0);
    // Idempotent.
    expect(
      await ensurePartitions(t.database.pool, info.mode, { aheadDays: 70, behindDays: 35 }),
    ).toBe(0);
    const { rows } = await t.database.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'readings'::regclass`,
    );
    expect(rows[0]!.n).toBeGreaterThanOrEqual(14);
  });

  it('serves hourly and daily rollups with the same query on either path', async () => {
    // Two devices on one unit, 3 hours of minute data two weeks ago.
    const start = new Date(Date.now() - 14 * 86_400_000);
    start.setUTCHours(6, 0, 0, 0);
    await t.database.pool.query(
      `INSERT INTO readings (ts, device_id, unit_id, seq, temperature_c, ph)
       SELECT $1::timestamptz + make_interval(mins => g), d, $2, g, 35 + (g % 60) / 60.0, CASE WHEN d = 'bd-temp-01' THEN 7 ELSE NULL END
       FROM generate_series(0, 179) g, unnest(ARRAY['bd-temp-01', 'bd-gas-01']) d`,
      [start.toISOString(), unitId],
    );
    const hourly = await both({
      unitId,
      from: start,
      to: new Date(start.getTime() + 3 * 3_600_000),
      bucket: 'hour',
      metrics: ['temperature_c', 'ph', 'methane_pct'],
    });
    expect(hourly).toHaveLength(3);
    expect(hourly[0]!.bucket.toISOString()).toBe(start.toISOString());
    expect(hourly[0]!.values.temperature_c).toMatchObject({ count: 120, min: 35 });
    expect(hourly[0]!.values.temperature_c!.avg).toBeCloseTo(35 + 59 / 120, 6);
    expect(hourly[0]!.values.ph).toMatchObject({ count: 60, avg: 7 });
    expect(hourly[0]!.values.methane_pct).toBeNull();

    const byDevice = await both({
      deviceId: 'bd-temp-01',
      from: start,
      to: new Date(start.getTime() + 86_400_000),
      bucket: 'hour',
      metrics: ['temperature_c'],
    });
    expect(byDevice.map((p) => p.values.temperature_c!.count)).toEqual([60, 60, 60]);

    const daily = await both({
      unitId,
      from: new Date(start.getTime() - 86_400_000),
      to: new Date(start.getTime() + 86_400_000),
      bucket: 'day',
      metrics: ['temperature_c'],
    });
    expect(daily).toHaveLength(1);
    expect(daily[0]!.values.temperature_c!.count).toBe(360);
  });

  it('refuses a second reading for the same device and instant', async () => {
    const ts = new Date(Date.now() - 3_600_000).toISOString();
    await t.database.pool.query(
      `INSERT INTO readings (ts, device_id, unit_id, seq, ph) VALUES ($1, 'bd-temp-01', $2, 1, 7)`,
      [ts, unitId],
    );
    await expect(
      t.database.pool.query(
        `INSERT INTO readings (ts, device_id, unit_id, seq, ph) VALUES ($1, 'bd-temp-01', $2, 2, 7.1)`,
        [ts, unitId],
      ),
    ).rejects.toThrow(/duplicate key/);
  });

  it('expires raw data past retention and keeps what is younger', async () => {
    // Partitions (or chunks) reaching back 120 days, one reading in the oldest week.
    await ensurePartitions(t.database.pool, info.mode, { aheadDays: 7, behindDays: 120 });
    const old = new Date(Date.now() - 110 * 86_400_000).toISOString();
    await t.database.pool.query(
      `INSERT INTO readings (ts, device_id, unit_id, seq, ph) VALUES ($1, 'bd-gas-01', $2, 0, 7)`,
      [old, unitId],
    );
    const before = await t.database.db.execute<{ n: number }>(
      sql`SELECT count(*)::int AS n FROM readings`,
    );
    const oldDay = new Date(old);
    oldDay.setUTCHours(0, 0, 0, 0);
    const rollupOfOld = () =>
      both({
        deviceId: 'bd-gas-01',
        from: oldDay,
        to: new Date(oldDay.getTime() + 86_400_000),
        bucket: 'day',
        metrics: ['ph'],
      });
    expect((await rollupOfOld())[0]!.values.ph).toMatchObject({ count: 1, avg: 7 });
    const expired = await expireRawReadings(
      t.database.pool,
      info.mode,
      new Date(Date.now() - 60 * 86_400_000),
    );
    // The raw row is gone from the live table, its rollups are kept (carbon-audit retention).
    const hourly = await both({
      deviceId: 'bd-gas-01',
      from: oldDay,
      to: new Date(oldDay.getTime() + 86_400_000),
      bucket: 'hour',
      metrics: ['ph'],
    });
    expect(hourly.map((p) => p.values.ph?.count)).toEqual([1]);
    expect((await rollupOfOld())[0]!.values.ph).toMatchObject({ count: 1, avg: 7 });
    const after = await t.database.db.execute<{ n: number }>(
      sql`SELECT count(*)::int AS n FROM readings`,
    );
    expect(after.rows[0]!.n).toBe(before.rows[0]!.n - 1);
    expect(expired.length).toBeGreaterThan(0);
    if (info.mode === 'partitioned') {
      expect(expired.every((name) => /^readings_p\d{8}$/.test(name))).toBe(true);
      // Detached, not dropped: still there to archive.
      const { rows } = await t.database.pool.query(`SELECT to_regclass($1) AS r`, [expired[0]]);
      expect(rows[0].r).not.toBeNull();
    }
  });
});
