import fc from 'fast-check';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApiHarness, createUserWithPassword, type ApiHarness } from '../test/api-harness.ts';
import { createTestDatabase, testLogger } from '../test/db.ts';
import { timeseriesInfo } from '../db/timeseries.ts';
import { createAlertService, type AlertService } from './alert-service.ts';
import { createDashboardQueries } from './dashboard-repo.ts';
import { dashboardRoutes } from './dashboard-routes.ts';
import { createLiveHub } from './live-hub.ts';

/**
 * Per-unit thresholds on a real PostgreSQL: the API (list, set, remove; audited; roles as the
 * kind-rule API; one validator for both), the database's own refusal of writes by roles without
 * `alerts:configure`, and the evaluator judging each unit by its effective rule.
 */
let h: ApiHarness;
let alerts: AlertService;
let site: string;
let unitA: string;
let unitB: string;
let unitC: string;
let managerSession: string;
const hub = createLiveHub({ flushMs: 50 });

beforeAll(async () => {
  const t = await createTestDatabase();
  const mode = (await timeseriesInfo(t.database.pool)).mode;
  h = await createApiHarness({
    routes: ({ audit, db, authenticator }) => [
      {
        plugin: dashboardRoutes({
          db,
          audit,
          authenticator,
          queries: createDashboardQueries({ mode }),
          hub,
          alerts: { invalidateRules: () => alerts.invalidateRules() },
        }),
      },
    ],
  });
  const pool = h.t.database.pool;
  expect((await timeseriesInfo(pool)).mode).toBeDefined();
  alerts = createAlertService({
    pool,
    logger: testLogger,
    notify: false,
  });
  await alerts.ensureDefaults();
  site = (await pool.query<{ id: string }>(`INSERT INTO sites (name) VALUES ('S') RETURNING id`))
    .rows[0]!.id;
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', 'A'), ($1, 'biodigester', 'B'), ($1, 'collection_point', 'C') RETURNING id`,
    [site],
  );
  [unitA, unitB, unitC] = rows.map((r) => r.id) as [string, string, string];
  await pool.query(
    `INSERT INTO devices (id, unit_id, kind) VALUES ('ov-a', $1, 'biodigester'), ('ov-b', $2, 'biodigester'), ('ov-c', $3, 'collection_point')`,
    [unitA, unitB, unitC],
  );
  const made = await createUserWithPassword(h, { username: 'km-a', role: 'kitchen_manager' });
  await h.users.assignUnits(made.user.id, [unitA], { actorId: 'system', actorRole: 'system' });
  managerSession = (
    await h.sessions.login(
      { username: 'km-a', password: made.password },
      { actorId: 'anonymous', actorRole: 'anonymous', ip: '127.0.0.1' },
    )
  ).sessionId;
}, 120_000);

/** The kitchen manager of unit A signs in (an API token of the role has no units). */
async function managerCookie(): Promise<string> {
  const res = await h.app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    payload: { username: 'km-a', password: 'correct horse battery staple' },
  });
  return String([res.headers['set-cookie']].flat()[0]).split(';')[0]!;
}

const call = async (
  method: 'GET' | 'PUT' | 'DELETE',
  url: string,
  role: 'technician' | 'admin' | 'kitchen_manager' | 'collector' | 'auditor' = 'technician',
  payload?: Record<string, unknown>,
) =>
  h.app.inject({
    method,
    url: `/api/v1${url}`,
    headers:
      role === 'kitchen_manager' && method === 'GET'
        ? { cookie: await managerCookie() }
        : { authorization: `Bearer ${await h.tokenFor(role)}` },
    ...(payload === undefined ? {} : { payload }),
  });

/** Raw SQL as the API's own login role, in a scope the database verified from a credential. */
async function asApiRole<T>(
  credential: { session?: string; token?: string },
  fn: (c: pg.Client) => Promise<T>,
): Promise<T> {
  const c = new pg.Client({ connectionString: h.apiUrl });
  await c.connect();
  try {
    await c.query('BEGIN');
    if (credential.session) await c.query(`SELECT thamani_enter_session($1)`, [credential.session]);
    if (credential.token) await c.query(`SELECT thamani_enter_api_token($1)`, [credential.token]);
    return await fn(c);
  } finally {
    await c.query('ROLLBACK').catch(() => undefined);
    await c.end();
  }
}

describe('per-unit alert thresholds: API', () => {
  it('lists a unit’s effective rules, sets and removes an override, each audited with before and after', async () => {
    const rule = 'biodigester.ph.low';
    const list = async () =>
      (await call('GET', `/units/${unitA}/alert-rules`, 'kitchen_manager')).json<{
        rules: { id: string; warn: number; overridden: boolean; kindRule: { warn: number } }[];
      }>();
    expect((await list()).rules.find((r) => r.id === rule)).toMatchObject({
      warn: 6.8,
      overridden: false,
    });
    // Only this kind's rules exist for the unit.
    expect((await list()).rules.every((r) => r.id.startsWith('biodigester.'))).toBe(true);
    const put = await call('PUT', `/units/${unitA}/alert-rules/${rule}`, 'technician', {
      warn: 6.5,
      critical: 6.2,
      clear: 6.6,
      enabled: true,
    });
    expect(put.statusCode).toBe(200);
    expect((await list()).rules.find((r) => r.id === rule)).toMatchObject({
      warn: 6.5,
      overridden: true,
      kindRule: { warn: 6.8 },
    });
    // The other unit of the kind keeps the kind's rule.
    const other = (await call('GET', `/units/${unitB}/alert-rules`)).json<{
      rules: { id: string; warn: number; overridden: boolean }[];
    }>();
    expect(other.rules.find((r) => r.id === rule)).toMatchObject({ warn: 6.8, overridden: false });
    const del = await call('DELETE', `/units/${unitA}/alert-rules/${rule}`, 'admin');
    expect(del.json()).toMatchObject({ warn: 6.8, overridden: false });
    expect((await list()).rules.find((r) => r.id === rule)).toMatchObject({
      warn: 6.8,
      overridden: false,
    });
    expect((await call('DELETE', `/units/${unitA}/alert-rules/${rule}`)).json()).toMatchObject({
      code: 'ALERT_RULE_OVERRIDE_NOT_FOUND',
    });
    const { rows } = await h.t.database.pool.query<{
      action: string;
      target_id: string;
      before: Record<string, unknown>;
      after: Record<string, unknown>;
    }>(
      `SELECT action, target_id, before, after FROM audit_log WHERE action LIKE 'alert_rule.override%' ORDER BY id`,
    );
    expect(rows).toEqual([
      {
        action: 'alert_rule.override',
        target_id: unitA,
        before: { rule, inherited: { warn: 6.8, critical: 6.5, clear: 6.9, enabled: true } },
        after: { rule, warn: 6.5, critical: 6.2, clear: 6.6, enabled: true },
      },
      {
        action: 'alert_rule.override_remove',
        target_id: unitA,
        before: { rule, warn: 6.5, critical: 6.2, clear: 6.6, enabled: true },
        after: { rule, inherited: { warn: 6.8, critical: 6.5, clear: 6.9, enabled: true } },
      },
    ]);
  });

  it('gives writes to the roles of the kind-rule API only, and no unit or rule outside scope', async () => {
    const body = { warn: 7, critical: 6, clear: 7.2, enabled: true };
    for (const role of ['kitchen_manager', 'collector', 'auditor'] as const)
      expect(
        (await call('PUT', `/units/${unitA}/alert-rules/biodigester.ph.low`, role, body))
          .statusCode,
      ).toBe(403);
    // A digester rule does not exist for a collection point; an unknown unit is not found.
    expect(
      (
        await call('PUT', `/units/${unitC}/alert-rules/biodigester.ph.low`, 'technician', body)
      ).json(),
    ).toMatchObject({ code: 'ALERT_RULE_NOT_FOUND' });
    expect(
      (
        await call(
          'PUT',
          `/units/00000000-0000-4000-8000-000000000000/alert-rules/biodigester.ph.low`,
          'technician',
          body,
        )
      ).statusCode,
    ).toBe(404);
    // A kitchen manager reads only the units assigned to them.
    expect((await call('GET', `/units/${unitB}/alert-rules`, 'kitchen_manager')).statusCode).toBe(
      404,
    );
  });

  it('validates an override exactly as a kind rule: the same inputs are refused with the same error', async () => {
    const finite = fc.double({ min: -100, max: 100, noNaN: true, noDefaultInfinity: true });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          'biodigester.ph.low',
          'biodigester.h2s_ppm.high',
          'biodigester.device.offline',
          'biodigester.device.cert_expiry',
        ),
        fc.record({ warn: finite, critical: fc.option(finite, { nil: null }), clear: finite }),
        async (rule, t) => {
          const body = { ...t, enabled: true };
          const kind = await call('PUT', `/alert-rules/${rule}`, 'technician', body);
          const unit = await call('PUT', `/units/${unitB}/alert-rules/${rule}`, 'technician', body);
          expect(unit.statusCode).toBe(kind.statusCode);
          if (kind.statusCode !== 200)
            expect(unit.json<{ message: string }>().message).toBe(
              kind.json<{ message: string }>().message,
            );
        },
      ),
      { numRuns: 40 },
    );
    // Put the kind rules back as they were for the tests after this one.
    await h.t.database.pool.query(`DELETE FROM alert_rules`);
    await h.t.database.pool.query(`DELETE FROM alert_rule_overrides`);
    await alerts.ensureDefaults();
    alerts.invalidateRules();
  });
});

describe('per-unit alert thresholds: the database decides who writes', () => {
  const insert = `INSERT INTO alert_rule_overrides (unit_id, rule_id, unit_kind, warn, critical, clear, enabled, updated_by_id) VALUES ($1, 'biodigester.ph.low', 'biodigester', 7, 6, 7.2, true, 'x')`;

  it('a kitchen manager (no alerts:configure) cannot insert, change or remove an override, even on their own unit', async () => {
    await expect(
      asApiRole({ session: managerSession }, (c) => c.query(insert, [unitA])),
    ).rejects.toThrow(/row-level security/);
    await h.t.database.pool.query(insert, [unitA]);
    expect(
      await asApiRole({ session: managerSession }, async (c) => ({
        seen: (await c.query(`SELECT unit_id FROM alert_rule_overrides`)).rowCount,
        updated: (await c.query(`UPDATE alert_rule_overrides SET warn = 1`)).rowCount,
        deleted: (await c.query(`DELETE FROM alert_rule_overrides`)).rowCount,
      })),
    ).toEqual({ seen: 1, updated: 0, deleted: 0 });
    // Without a verified scope, nothing is seen or written.
    expect(
      await asApiRole({}, async (c) => ({
        seen: (await c.query(`SELECT unit_id FROM alert_rule_overrides`)).rowCount,
        deleted: (await c.query(`DELETE FROM alert_rule_overrides`)).rowCount,
      })),
    ).toEqual({ seen: 0, deleted: 0 });
    await expect(asApiRole({}, (c) => c.query(insert, [unitB]))).rejects.toThrow(
      /row-level security/,
    );
    await h.t.database.pool.query(`DELETE FROM alert_rule_overrides`);
  });

  it('a kitchen manager reads the overrides of their own units only; a technician writes any', async () => {
    await h.t.database.pool.query(insert, [unitB]);
    expect(
      await asApiRole(
        { session: managerSession },
        async (c) => (await c.query(`SELECT unit_id FROM alert_rule_overrides`)).rowCount,
      ),
    ).toBe(0);
    const tech = await h.tokenFor('technician');
    expect(
      await asApiRole({ token: tech }, async (c) => ({
        inserted: (await c.query(insert, [unitA])).rowCount,
        deleted: (await c.query(`DELETE FROM alert_rule_overrides`)).rowCount,
      })),
    ).toEqual({ inserted: 1, deleted: 2 });
    // An override of a digester rule on a collection point cannot exist at all.
    await expect(
      h.t.database.pool.query(insert.replace("'biodigester', 7", "'collection_point', 7"), [unitC]),
    ).rejects.toThrow(/foreign key/);
    await h.t.database.pool.query(`DELETE FROM alert_rule_overrides`);
  });
});
