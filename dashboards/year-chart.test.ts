import { beforeAll, describe, expect, it } from 'vitest';
import { timeseriesInfo } from '../db/timeseries.ts';
import { createApiHarness, type ApiHarness } from '../test/api-harness.ts';
import { createTestDatabase } from '../test/db.ts';
import { zonedDayStart } from './csv-fns.ts';
import { createDashboardQueries } from './dashboard-repo.ts';
import { dashboardRoutes } from './dashboard-routes.ts';
import { localDay } from './gas-day-fns.ts';
import { createLiveHub } from './live-hub.ts';

/**
 * The 1-year chart's points are the configured zone's calendar days, through the API the page's
 * script reads: a reading at 23:30 local and one at 00:30 local the next day are two days, and
 * each point starts at the zone's midnight (not UTC's).
 */

const harnesses: Record<string, ApiHarness> = {};
const units: Record<string, string> = {};

beforeAll(async () => {
  const t = await createTestDatabase();
  const mode = (await timeseriesInfo(t.database.pool)).mode;
  for (const zone of ['Africa/Nairobi', 'Asia/Kolkata']) {
    const queries = createDashboardQueries({ mode, timeZone: zone });
    harnesses[zone] = await createApiHarness(
      {
        routes: ({ audit, db, authenticator }) => [
          {
            plugin: dashboardRoutes({ db, audit, authenticator, queries, hub: createLiveHub() }),
          },
        ],
      },
      { t },
    );
  }
  const owner = t.database.pool;
  const site = await owner.query<{ id: string }>(
    `INSERT INTO sites (name) VALUES ('Year') RETURNING id`,
  );
  for (const [i, zone] of Object.keys(harnesses).entries()) {
    const id = (
      await owner.query<{ id: string }>(
        `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', $2) RETURNING id`,
        [site.rows[0]!.id, `Year digester ${i}`],
      )
    ).rows[0]!.id;
    await owner.query(
      `INSERT INTO devices (id, unit_id, kind, status) VALUES ($1, $2, 'biodigester', 'active')`,
      [`bd-year-${i}`, id],
    );
    units[zone] = id;
  }
}, 120_000);

describe('the 1-year chart', () => {
  it('has one point per local day of the configured zone, each at its midnight', async () => {
    const owner = harnesses['Africa/Nairobi']!.t.database.pool;
    for (const [zone, h] of Object.entries(harnesses)) {
      const unitId = units[zone]!;
      const device = `bd-year-${Object.keys(units).indexOf(zone)}`;
      // Ten days ago, 30 minutes either side of local midnight.
      const day = localDay(Date.now() - 10 * 86_400_000, zone);
      const midnight = zonedDayStart(day, zone).getTime();
      await owner.query(
        `INSERT INTO readings (ts, device_id, unit_id, seq, temperature_c) VALUES ($1, $4, $3, 1, 30), ($2, $4, $3, 2, 40)`,
        [
          new Date(midnight - 30 * 60_000).toISOString(),
          new Date(midnight + 30 * 60_000).toISOString(),
          unitId,
          device,
        ],
      );
      const res = await h.app.inject({
        url: `/api/v1/units/${unitId}/series?range=1y&metrics=temperature_c`,
        headers: { authorization: `Bearer ${await h.tokenFor('admin')}` },
      });
      expect(res.statusCode, zone).toBe(200);
      const body = res.json<{
        t: number[];
        series: { temperature_c: { avg: (number | null)[]; count: number[] } };
      }>();
      const points = body.t
        .map((t, i) => ({
          t,
          avg: body.series.temperature_c.avg[i],
          n: body.series.temperature_c.count[i],
        }))
        .filter((p) => (p.n ?? 0) > 0);
      expect(points, zone).toEqual([
        { t: zonedDayStart(localDay(midnight - 1, zone), zone).getTime() / 1000, avg: 30, n: 1 },
        { t: midnight / 1000, avg: 40, n: 1 },
      ]);
    }
  });

  it('daily gas cuts the hour that holds midnight in a +5:30 zone: each half in its own day', async () => {
    const zone = 'Asia/Kolkata';
    const h = harnesses[zone]!;
    const day = localDay(Date.now() - 5 * 86_400_000, zone);
    const midnight = zonedDayStart(day, zone).getTime();
    // 60 L/min 20 minutes before local midnight and 10 minutes after: the UTC hour holding
    // midnight is half in each day, so each day gets 60 × 30 L = 1.8 m³ (not 3.6 to one).
    await h.t.database.pool.query(
      `INSERT INTO readings (ts, device_id, unit_id, seq, gas_flow_lpm) VALUES ($1, 'bd-year-1', $3, 10, 60), ($2, 'bd-year-1', $3, 11, 60)`,
      [
        new Date(midnight - 20 * 60_000).toISOString(),
        new Date(midnight + 10 * 60_000).toISOString(),
        units[zone],
      ],
    );
    const res = await h.app.inject({
      url: `/api/v1/units/${units[zone]}/daily-gas?days=10`,
      headers: { authorization: `Bearer ${await h.tokenFor('admin')}` },
    });
    expect(res.statusCode).toBe(200);
    const days = res.json<{ days: { day: string; m3: number }[] }>().days.filter((d) => d.m3 > 0);
    expect(days).toEqual([
      { day: localDay(midnight - 1, zone), m3: 1.8 },
      { day, m3: 1.8 },
    ]);
  });
});
