import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { scopedServices } from '../api/scoped-services.ts';
import { parseCsv } from '../dashboards/csv-fns.ts';
import { createAlertService } from '../dashboards/alert-service.ts';
import { createDashboardQueries } from '../dashboards/dashboard-repo.ts';
import { timeseriesInfo } from '../db/timeseries.ts';
import {
  createApiHarness,
  createUserWithPassword,
  systemActor,
  type ApiHarness,
} from '../test/api-harness.ts';
import { createTestDatabase, testLogger } from '../test/db.ts';
import { fieldRoutes } from './field-routes.ts';
import { fieldServiceMaker } from './index.ts';

/**
 * The feeding log and collections through the API as people use it (issue 19): bounds and
 * times refused with clear errors, corrections and deletions audited with the old values, the
 * needs-collection list, and the collection history as CSV.
 */
const TZ = 'Africa/Nairobi';
const PASSWORD = 'correct horse battery staple';
let h: ApiHarness;
const ids = { site: '', digester: '', otherDigester: '', binA: '', binB: '' };
const as: Record<string, { cookie: string; csrf: string; id: string }> = {};

beforeAll(async () => {
  const t = await createTestDatabase();
  const queries = createDashboardQueries({ mode: (await timeseriesInfo(t.database.pool)).mode });
  h = await createApiHarness(
    {
      routes: ({ audit, db }) => [
        {
          plugin: fieldRoutes({
            field: scopedServices(db, fieldServiceMaker({ audit, queries, timeZone: TZ })),
            timeZone: TZ,
          }),
        },
      ],
    },
    { t },
  );
  const owner = h.t.database.pool;
  await createAlertService({ pool: owner, logger: testLogger, notify: false }).ensureDefaults();
  ids.site = (
    await owner.query<{ id: string }>(
      `INSERT INTO sites (name) VALUES ('Field School') RETURNING id`,
    )
  ).rows[0]!.id;
  const unit = async (kind: string, name: string, createdAgo = '30 days') =>
    (
      await owner.query<{ id: string }>(
        `INSERT INTO units (site_id, kind, name, created_at) VALUES ($1, $2, $3, now() - $4::interval) RETURNING id`,
        [ids.site, kind, name, createdAgo],
      )
    ).rows[0]!.id;
  ids.digester = await unit('biodigester', 'Kitchen Digester');
  ids.otherDigester = await unit('biodigester', 'Other Digester');
  ids.binA = await unit('collection_point', 'Bin A');
  ids.binB = await unit('collection_point', 'Bin B');
  for (const [name, role, units] of [
    ['km-one', 'kitchen_manager', [ids.digester]],
    ['km-two', 'kitchen_manager', [ids.digester]],
    ['col-one', 'collector', [ids.binA, ids.binB]],
  ] as const) {
    const { user } = await createUserWithPassword(h, { username: name, role, password: PASSWORD });
    await h.users.assignUnits(user.id, [...units], systemActor);
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: name, password: PASSWORD },
    });
    as[name] = {
      cookie: String(res.headers['set-cookie']).split(';')[0]!,
      csrf: res.json<{ csrfToken: string }>().csrfToken,
      id: user.id,
    };
  }
});

function call(
  who: string,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  url: string,
  payload?: object,
) {
  const s = as[who]!;
  return h.app.inject({
    method,
    url,
    headers: { cookie: s.cookie, 'x-csrf-token': s.csrf },
    ...(payload ? { payload } : {}),
  });
}

const minutesFromNow = (m: number) => new Date(Date.now() + m * 60_000).toISOString();

describe('feeding log', () => {
  it('records a feeding (time defaults to now) and shows it per day beside the gas', async () => {
    const before = Date.now();
    const res = await call('km-one', 'POST', `/api/v1/units/${ids.digester}/feedings`, {
      kg: 42.5,
      note: 'lunch leftovers',
    });
    expect(res.statusCode, res.body).toBe(201);
    const made = res.json<{ id: number; fedAt: string; kg: number; recordedBy: string }>();
    expect(made.kg).toBe(42.5);
    expect(made.recordedBy).toBe(as['km-one']!.id);
    expect(Date.parse(made.fedAt)).toBeGreaterThanOrEqual(before - 1000);
    const perDay = await call('km-one', 'GET', `/api/v1/units/${ids.digester}/feed-gas?days=7`);
    expect(perDay.statusCode).toBe(200);
    const days = perDay.json<{ days: { day: string; kg: number; m3: number }[] }>().days;
    expect(days).toHaveLength(7);
    const today = new Intl.DateTimeFormat('en-CA', { timeZone: TZ }).format(new Date());
    expect(days.at(-1)).toMatchObject({ day: today, kg: 42.5 });
  });

  it('refuses implausible amounts and times with clear errors', async () => {
    const cases: [object, string, RegExp][] = [
      [{ kg: 0 }, 'VALIDATION_FAILED', /more than 0/],
      [{ kg: -3 }, 'VALIDATION_FAILED', /more than 0/],
      [{ kg: 1000.5 }, 'VALIDATION_FAILED', /at most 1000/],
      [{ kg: '12' }, 'VALIDATION_FAILED', /number/],
      [{ kg: 5, fedAt: 'yesterday' }, 'VALIDATION_FAILED', /ISO 8601/],
      [{ kg: 5, fedAt: minutesFromNow(10) }, 'FIELD_TIME_INVALID', /in the future/],
      [
        { kg: 5, fedAt: minutesFromNow(-31 * 24 * 60) },
        'FIELD_TIME_INVALID',
        /before Kitchen Digester was registered/,
      ],
      [{ kg: 5, note: 'x'.repeat(501) }, 'VALIDATION_FAILED', /500/],
    ];
    for (const [body, code, message] of cases) {
      const res = await call('km-one', 'POST', `/api/v1/units/${ids.digester}/feedings`, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().code, JSON.stringify(body)).toBe(code);
      expect(res.json().message, JSON.stringify(body)).toMatch(message);
    }
    // A time a little ahead (a phone's fast clock) is fine.
    const ok = await call('km-one', 'POST', `/api/v1/units/${ids.digester}/feedings`, {
      kg: 1,
      fedAt: minutesFromNow(2),
    });
    expect(ok.statusCode, ok.body).toBe(201);
  });

  it('a correction and a deletion keep the old values in the audit log; only the author may make them', async () => {
    const made = (
      await call('km-one', 'POST', `/api/v1/units/${ids.digester}/feedings`, { kg: 30 })
    ).json<{ id: number }>();
    const other = await call('km-two', 'PATCH', `/api/v1/feedings/${made.id}`, { kg: 3 });
    expect(other.statusCode).toBe(409);
    expect(other.json()).toMatchObject({ code: 'FEEDING_LOCKED' });
    expect(other.json().message).toMatch(/only the person who recorded it/);
    const fixed = await call('km-one', 'PATCH', `/api/v1/feedings/${made.id}`, {
      kg: 3,
      note: 'typo',
    });
    expect(fixed.statusCode, fixed.body).toBe(200);
    expect(fixed.json()).toMatchObject({ kg: 3, note: 'typo' });
    expect(fixed.json().correctedAt).not.toBeNull();
    const gone = await call('km-one', 'DELETE', `/api/v1/feedings/${made.id}`);
    expect(gone.statusCode, gone.body).toBe(200);
    expect(gone.json().voidedAt).not.toBeNull();
    const again = await call('km-one', 'PATCH', `/api/v1/feedings/${made.id}`, { kg: 4 });
    expect(again.json()).toMatchObject({ code: 'FEEDING_LOCKED' });
    const { rows } = await h.t.database.pool.query<{
      action: string;
      before: unknown;
      after: unknown;
      actor_id: string;
    }>(
      `SELECT action, before, after, actor_id FROM audit_log WHERE target_type = 'feeding' AND target_id = $1 ORDER BY id`,
      [String(made.id)],
    );
    expect(rows.map((r) => r.action)).toEqual([
      'feeding.record',
      'feeding.correct',
      'feeding.delete',
    ]);
    expect(rows[1]!.before).toMatchObject({ kg: 30, note: null });
    expect(rows[1]!.after).toMatchObject({ kg: 3, note: 'typo' });
    expect(rows[2]!.before).toMatchObject({ kg: 3, note: 'typo' });
    expect(rows.every((r) => r.actor_id === as['km-one']!.id)).toBe(true);
    // Listed, marked deleted, and left out of the per-day sums.
    const list = (await call('km-two', 'GET', `/api/v1/units/${ids.digester}/feedings`)).json<{
      feedings: { id: number; voidedAt: string | null }[];
    }>().feedings;
    expect(list.find((f) => f.id === made.id)?.voidedAt).not.toBeNull();
  });

  it('a collector may not record a feeding; nobody records for a digester they are not assigned', async () => {
    const res = await call('col-one', 'POST', `/api/v1/units/${ids.digester}/feedings`, { kg: 5 });
    expect(res.statusCode).toBe(403);
    const outside = await call('km-one', 'POST', `/api/v1/units/${ids.otherDigester}/feedings`, {
      kg: 5,
    });
    expect(outside.statusCode).toBe(404);
    expect(outside.json().code).toBe('UNIT_NOT_FOUND');
  });
});

describe('collections', () => {
  it('marks a point collected, lists its history, and downloads it as CSV', async () => {
    const res = await call('col-one', 'POST', `/api/v1/units/${ids.binA}/collections`, {
      weightKg: 61.5,
      note: 'gate bin, heavy',
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().collectedBy).toBe(as['col-one']!.id);
    for (const [body, code] of [
      [{ weightKg: 0 }, 'VALIDATION_FAILED'],
      [{ weightKg: 5001 }, 'VALIDATION_FAILED'],
      [{ weightKg: 5, collectedAt: minutesFromNow(60) }, 'FIELD_TIME_INVALID'],
    ] as const) {
      const bad = await call('col-one', 'POST', `/api/v1/units/${ids.binA}/collections`, body);
      expect(bad.statusCode).toBe(400);
      expect(bad.json().code).toBe(code);
    }
    const today = new Intl.DateTimeFormat('en-CA', { timeZone: TZ }).format(new Date());
    const csv = await call(
      'col-one',
      'GET',
      `/api/v1/units/${ids.binA}/collections?from=${today}&to=${today}`,
    );
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-disposition']).toMatch(/^attachment; filename="bin-a-collections-/);
    const [header, ...rows] = parseCsv(csv.body);
    expect(header).toEqual([
      'collected_at_utc',
      `local_time (${TZ})`,
      'weight_kg',
      'collected_by',
      'note',
      'recorded_at_utc',
    ]);
    expect(rows).toHaveLength(1);
    expect(rows[0]![2]).toBe('61.5');
    expect(rows[0]![3]).toBe('col-one');
    expect(rows[0]![4]).toBe('gate bin, heavy');
  });

  it('orders the needs-collection list by fill level and forecast; a point marked collected leaves the top', async () => {
    const owner = h.t.database.pool;
    // Bin B: 92 % now, rising 3 points an hour over the last 12 h; bin A: 40 % and rising slowly.
    await owner.query(
      `INSERT INTO devices (id, unit_id, kind, status) VALUES ('cp-field-a', $1, 'collection_point', 'active'), ('cp-field-b', $2, 'collection_point', 'active')`,
      [ids.binA, ids.binB],
    );
    await owner.query(
      `INSERT INTO readings (ts, device_id, unit_id, seq, fill_level_pct)
       SELECT now() - make_interval(mins => g * 30), 'cp-field-b', $1, 100 - g, 92 - g * 1.5 FROM generate_series(0, 24) g`,
      [ids.binB],
    );
    await owner.query(
      `INSERT INTO readings (ts, device_id, unit_id, seq, fill_level_pct)
       SELECT now() - make_interval(mins => g * 30), 'cp-field-a', $1, 100 - g, 40 - g * 0.5 FROM generate_series(0, 24) g`,
      [ids.binA],
    );
    await owner.query(
      `INSERT INTO latest_readings (device_id, metric, unit_id, ts, value) VALUES ('cp-field-b', 'fill_level_pct', $1, now(), 92), ('cp-field-a', 'fill_level_pct', $2, now(), 40)`,
      [ids.binB, ids.binA],
    );
    const due = async () =>
      (await call('col-one', 'GET', '/api/v1/collection/due')).json<{
        needsAt: number;
        points: { unitId: string; due: boolean; forecast: { fullAt?: string; none?: string } }[];
      }>();
    const first = await due();
    expect(first.needsAt).toBe(80);
    expect(first.points.map((p) => p.unitId)).toEqual([ids.binB, ids.binA]);
    expect(first.points[0]!.due).toBe(true);
    // Bin A was collected (the test above) after most of its readings: its fit starts there, too few to forecast.
    expect(first.points[1]!.forecast).toMatchObject({ none: 'too-few-readings' });
    const b = first.points[0]!.forecast;
    expect(b.fullAt).toBeDefined();
    // 92 % rising 3 points an hour: full in about 2 h 40 min.
    const hours = (Date.parse(b.fullAt!) - Date.now()) / 3_600_000;
    expect(hours).toBeGreaterThan(2);
    expect(hours).toBeLessThan(3.5);
    const marked = await call('col-one', 'POST', `/api/v1/units/${ids.binB}/collections`, {
      weightKg: 80,
    });
    expect(marked.statusCode).toBe(201);
    const after = await due();
    expect(after.points[0]!.unitId).not.toBe(ids.binB);
    expect(after.points.find((p) => p.unitId === ids.binB)).toMatchObject({
      due: false,
      forecast: { none: 'emptied' },
    });
  });
});

describe('OpenAPI', () => {
  it('documents the field routes with their bounds', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json<{
      paths: Record<string, Record<string, { tags?: string[]; summary?: string }>>;
    }>();
    for (const [path, method] of [
      ['/api/v1/units/{id}/feedings', 'post'],
      ['/api/v1/feedings/{id}', 'patch'],
      ['/api/v1/feedings/{id}', 'delete'],
      ['/api/v1/units/{id}/feed-gas', 'get'],
      ['/api/v1/units/{id}/collections', 'post'],
      ['/api/v1/units/{id}/collections', 'get'],
      ['/api/v1/collection/due', 'get'],
    ] as const)
      expect(doc.paths[path]?.[method]?.tags, `${method} ${path}`).toEqual(['field']);
    expect(doc.paths['/api/v1/units/{id}/feedings']!.post!.summary).toMatch(/kg ≤ 1000/);
  });
});

describe('the database refuses what the API refuses', () => {
  it('raw SQL as the API role: no feeding without its audit entry, none in the future, none by another author, no rewrites', async () => {
    const login = await h.sessions.login(
      { username: 'km-one', password: PASSWORD },
      { actorId: 'anonymous', actorRole: 'anonymous', ip: '127.0.0.1' },
    );
    const attempt = async (sql: string, params: unknown[]) => {
      const c = new pg.Client({ connectionString: h.apiUrl });
      await c.connect();
      try {
        await c.query('BEGIN');
        await c.query(`SELECT thamani_enter_session($1)`, [login.sessionId]);
        await c.query(sql, params);
        await c.query('COMMIT');
        return 'committed';
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        return (err as Error).message;
      } finally {
        await c.end();
      }
    };
    const me = as['km-one']!.id;
    expect(
      await attempt(
        `INSERT INTO feedings (unit_id, fed_at, kg, recorded_by) VALUES ($1, now(), 5, $2)`,
        [ids.digester, me],
      ),
    ).toMatch(/has no audit entry/);
    expect(
      await attempt(
        `INSERT INTO feedings (unit_id, fed_at, kg, recorded_by) VALUES ($1, now() + interval '1 hour', 5, $2)`,
        [ids.digester, me],
      ),
    ).toMatch(/in the future/);
    expect(
      await attempt(
        `INSERT INTO feedings (unit_id, fed_at, kg, recorded_by) VALUES ($1, now(), 5, 'someone-else')`,
        [ids.digester],
      ),
    ).toMatch(/row-level security/);
    expect(
      await attempt(
        `INSERT INTO feedings (unit_id, fed_at, kg, recorded_by) VALUES ($1, now(), 5000, $2)`,
        [ids.digester, me],
      ),
    ).toMatch(/feedings_kg/);
    expect(await attempt(`DELETE FROM feedings`, [])).toMatch(/permission denied/);
    expect(await attempt(`UPDATE feedings SET recorded_by = 'x'`, [])).toMatch(/permission denied/);
    expect(await attempt(`UPDATE collections SET weight_kg = 1`, [])).toMatch(/permission denied/);
    expect(await attempt(`UPDATE feedings SET kg = 1 WHERE unit_id = $1`, [ids.digester])).toMatch(
      /has no audit entry/,
    );
  });
});
