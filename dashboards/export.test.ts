import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { timeseriesInfo } from '../db/timeseries.ts';
import {
  createApiHarness,
  createUserWithPassword,
  systemActor,
  type ApiHarness,
} from '../test/api-harness.ts';
import { createTestDatabase } from '../test/db.ts';
import { csvRow, localStamp, parseCsv, zonedDayStart } from './csv-fns.ts';
import { createDashboardQueries } from './dashboard-repo.ts';
import { exportRoutes } from './export-routes.ts';

/**
 * CSV downloads of a digester's readings and daily gas for a chosen range of local days (issue
 * 19), against a real PostgreSQL with row-level security: the rows of exactly those days in
 * Nairobi, nothing of another kitchen's unit, clear refusals for a bad range.
 */
let h: ApiHarness;
let cookie = '';
const unit = { mine: '', other: '' };

beforeAll(async () => {
  const t = await createTestDatabase();
  const queries = createDashboardQueries({ mode: (await timeseriesInfo(t.database.pool)).mode });
  h = await createApiHarness(
    { routes: ({ db }) => [{ plugin: exportRoutes({ db, queries, timeZone: 'Africa/Nairobi' }) }] },
    { t },
  );
  const owner = t.database.pool;
  const site = (
    await owner.query<{ id: string }>(
      `INSERT INTO sites (name) VALUES ('Export School') RETURNING id`,
    )
  ).rows[0]!.id;
  unit.mine = (
    await owner.query<{ id: string }>(
      `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', 'Mama "Ngina", Digester') RETURNING id`,
      [site],
    )
  ).rows[0]!.id;
  unit.other = (
    await owner.query<{ id: string }>(
      `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', 'Other Kitchen') RETURNING id`,
      [site],
    )
  ).rows[0]!.id;
  await owner.query(
    `INSERT INTO devices (id, unit_id, kind, status) VALUES ('bd-exp-1', $1, 'biodigester', 'active'), ('bd-exp-2', $2, 'biodigester', 'active')`,
    [unit.mine, unit.other],
  );
  // Around the edges of 1–2 Nov 2026 in Nairobi (UTC+3): a Nairobi day starts at 21:00 UTC the day before.
  const rows: [string, string, number, number | null, number | null][] = [
    ['2026-10-31T20:59:59Z', 'bd-exp-1', 1, 30.1, null], // 31 Oct 23:59:59 local: outside
    ['2026-10-31T21:00:00Z', 'bd-exp-1', 2, 30.2, -71], // 1 Nov 00:00 local: first
    ['2026-11-01T12:00:00Z', 'bd-exp-1', 3, 35.5, -70],
    ['2026-11-02T20:59:00Z', 'bd-exp-1', 4, 36.0, null], // 2 Nov 23:59 local: last
    ['2026-11-02T21:00:00Z', 'bd-exp-1', 5, 36.1, null], // 3 Nov 00:00 local: outside
  ];
  for (const [ts, device, seq, temp, rssi] of rows)
    await owner.query(
      `INSERT INTO readings (ts, device_id, unit_id, seq, temperature_c, rssi_dbm) VALUES ($1, $2, $3, $4, $5, $6)`,
      [ts, device, unit.mine, seq, temp, rssi],
    );
  await owner.query(
    `INSERT INTO readings (ts, device_id, unit_id, seq, temperature_c) VALUES ('2026-11-01T12:00:00Z', 'bd-exp-2', $1, 1, 99)`,
    [unit.other],
  );
  // Gas: 60 L/min for the hour 10:00–11:00 local on 1 Nov = 3.6 m³; 30 L/min for an hour on 2 Nov = 1.8 m³.
  await owner.query(
    `INSERT INTO readings (ts, device_id, unit_id, seq, gas_flow_lpm) VALUES ('2026-11-01T07:10:00Z', 'bd-exp-1', $1, 10, 60), ('2026-11-01T07:40:00Z', 'bd-exp-1', $1, 11, 60), ('2026-11-02T07:10:00Z', 'bd-exp-1', $1, 12, 30)`,
    [unit.mine],
  );
  const { user } = await createUserWithPassword(h, {
    username: 'export-manager',
    role: 'kitchen_manager',
  });
  await h.users.assignUnits(user.id, [unit.mine], systemActor);
  const res = await h.app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    payload: { username: 'export-manager', password: 'correct horse battery staple' },
  });
  cookie = String(res.headers['set-cookie']).split(';')[0]!;
});

const get = (url: string) => h.app.inject({ method: 'GET', url, headers: { cookie } });

describe('readings download', () => {
  it('gives exactly the readings of the chosen local days, as RFC 4180 CSV with UTC and Nairobi times', async () => {
    const res = await get(`/api/v1/units/${unit.mine}/readings?from=2026-11-01&to=2026-11-02`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toBe(
      'attachment; filename="mama-ngina-digester-readings-2026-11-01-to-2026-11-02.csv"',
    );
    expect(res.body.endsWith('\r\n')).toBe(true);
    const [header, ...rows] = parseCsv(res.body);
    expect(header).toEqual([
      'ts_utc',
      'local_time (Africa/Nairobi)',
      'device_id',
      'seq',
      'temperature_c',
      'gas_flow_lpm',
      'rssi_dbm',
    ]);
    expect(rows.map((r) => [r[0], r[1], r[3], r[4], r[6]])).toEqual([
      ['2026-10-31T21:00:00.000Z', '2026-11-01 00:00', '2', '30.2', '-71'],
      ['2026-11-01T07:10:00.000Z', '2026-11-01 10:10', '10', '', ''],
      ['2026-11-01T07:40:00.000Z', '2026-11-01 10:40', '11', '', ''],
      ['2026-11-01T12:00:00.000Z', '2026-11-01 15:00', '3', '35.5', '-70'],
      ['2026-11-02T07:10:00.000Z', '2026-11-02 10:10', '12', '', ''],
      ['2026-11-02T20:59:00.000Z', '2026-11-02 23:59', '4', '36', ''],
    ]);
    const json = await get(
      `/api/v1/units/${unit.mine}/readings?from=2026-11-01&to=2026-11-01&format=json`,
    );
    expect(json.json<{ readings: { seq: number }[] }>().readings.map((r) => r.seq)).toEqual([
      2, 10, 11, 3,
    ]);
  });

  it('another kitchen’s unit does not exist for a kitchen manager', async () => {
    const res = await get(`/api/v1/units/${unit.other}/readings?from=2026-11-01&to=2026-11-02`);
    expect(res.statusCode).toBe(404);
    // Nothing of the other kitchen's readings (temperature 99) comes back: only the refusal.
    // (Not a search for "99" in the body: the unit's random id and the request id may hold it.)
    const body = res.json<Record<string, unknown>>();
    expect(Object.keys(body).sort()).toEqual(['code', 'message', 'requestId']);
    expect(body).toMatchObject({ code: 'UNIT_NOT_FOUND', message: `Unit ${unit.other} not found` });
  });

  it('refuses a bad range with a clear error', async () => {
    const cases: [string, number, string][] = [
      ['from=2026-11-02&to=2026-11-01', 400, 'EXPORT_RANGE_INVALID'],
      ['from=2026-01-01&to=2026-03-01', 400, 'EXPORT_RANGE_TOO_LONG'],
      ['from=2026-11-31&to=2026-12-01', 400, 'VALIDATION_FAILED'],
      ['from=yesterday&to=2026-12-01', 400, 'VALIDATION_FAILED'],
      ['from=2026-11-01&to=2026-11-02&format=xlsx', 400, 'VALIDATION_FAILED'],
    ];
    for (const [q, status, code] of cases) {
      const res = await get(`/api/v1/units/${unit.mine}/readings?${q}`);
      expect(res.statusCode, q).toBe(status);
      expect(res.json().code, q).toBe(code);
      expect(res.json().message, q).not.toBe('');
    }
  });
});

describe('daily gas download', () => {
  it('one row per local day of the range, in m³', async () => {
    const res = await get(`/api/v1/units/${unit.mine}/gas?from=2026-10-31&to=2026-11-02`);
    expect(res.statusCode).toBe(200);
    expect(parseCsv(res.body)).toEqual([
      ['day', 'biogas_m3'],
      ['2026-10-31', '0'],
      ['2026-11-01', '3.6'],
      ['2026-11-02', '1.8'],
    ]);
  });
});

describe('csv-fns', () => {
  it('any row of text and numbers reads back as written (formula starts defused with a quote)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.string(),
            fc.double({ noNaN: true, noDefaultInfinity: true }),
            fc.constant(null),
          ),
          { minLength: 1, maxLength: 8 },
        ),
        (cells) => {
          const [back] = parseCsv(csvRow(cells));
          expect(back).toEqual(
            cells.map((c) =>
              c == null
                ? ''
                : typeof c === 'number'
                  ? String(c)
                  : /^[=+\-@\t\r]/.test(c)
                    ? `'${c}`
                    : c,
            ),
          );
        },
      ),
    );
  });

  it('a local day starts at 00:00 on that zone’s wall clock', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('2000-01-01'), max: new Date('2099-12-31'), noInvalidDate: true }),
        fc.constantFrom(
          'Africa/Nairobi',
          'UTC',
          'Europe/London',
          'America/New_York',
          'Asia/Kolkata',
          'Australia/Adelaide',
        ),
        (d, zone) => {
          const day = d.toISOString().slice(0, 10);
          expect(localStamp(zonedDayStart(day, zone), zone)).toBe(`${day} 00:00`);
        },
      ),
    );
  });
});
