import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, testLogger, type TestDatabase } from '../test/db.ts';
import { modelAlert, validThresholds, type ModelCondition } from '../test/alert-model.ts';
import { createAlertService, type AlertService } from './alert-service.ts';

/**
 * The evaluator on a real PostgreSQL judges each unit by its effective rule: generated kind
 * rules, one unit's override and a run of values fed to both units as stored readings (the hook
 * ingest calls), and the device sweep (offline, certificate expiry) with a unit's own limits.
 * What the `alerts` table holds afterwards is what an independent model computes per unit.
 */
let t: TestDatabase;
let alerts: AlertService;
let clock = Date.now();
let unitA: string;
let unitB: string;

beforeAll(async () => {
  t = await createTestDatabase();
  const pool = t.database.pool;
  alerts = createAlertService({
    pool,
    logger: testLogger,
    notify: false,
    now: () => new Date(clock),
  });
  await alerts.ensureDefaults();
  const site = (
    await pool.query<{ id: string }>(`INSERT INTO sites (name) VALUES ('Eval') RETURNING id`)
  ).rows[0]!.id;
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', 'A'), ($1, 'biodigester', 'B') RETURNING id`,
    [site],
  );
  [unitA, unitB] = rows.map((r) => r.id) as [string, string];
  await pool.query(
    `INSERT INTO devices (id, unit_id, kind) VALUES ('ev-a', $1, 'biodigester'), ('ev-b', $2, 'biodigester')`,
    [unitA, unitB],
  );
}, 120_000);

/** Sets the kind's rule and unit A's override, and forgets every earlier alert. */
async function configure(
  ruleId: string,
  kind: { warn: number; critical: number | null; clear: number; enabled: boolean },
  override: { warn: number; critical: number | null; clear: number; enabled: boolean } | null,
): Promise<number> {
  const pool = t.database.pool;
  await pool.query(
    `UPDATE alert_rules SET warn = $2, critical = $3, clear = $4, enabled = $5 WHERE id = $1`,
    [ruleId, kind.warn, kind.critical, kind.clear, kind.enabled],
  );
  await pool.query(`DELETE FROM alert_rule_overrides`);
  if (override)
    await pool.query(
      `INSERT INTO alert_rule_overrides (unit_id, rule_id, unit_kind, warn, critical, clear, enabled, updated_by_id) VALUES ($1, $2, 'biodigester', $3, $4, $5, $6, 'test')`,
      [unitA, ruleId, override.warn, override.critical, override.clear, override.enabled],
    );
  await pool.query(`UPDATE alerts SET status = 'closed', closed_at = now() WHERE status = 'open'`);
  alerts.reset();
  alerts.invalidateRules();
  const { rows } = await pool.query<{ n: string }>(`SELECT coalesce(max(id), 0) AS n FROM alerts`);
  return Number(rows[0]!.n);
}

/** What the alerts table says for one device and rule since `after`. */
async function outcome(after: number, deviceId: string, ruleId: string) {
  const { rows } = await t.database.pool.query<{
    severity: 'warning' | 'critical';
    status: string;
  }>(
    `SELECT severity, status FROM alerts WHERE id > $1 AND device_id = $2 AND rule_id = $3 ORDER BY id`,
    [after, deviceId, ruleId],
  );
  const open = rows.find((r) => r.status === 'open');
  return { opened: rows.length, state: open?.severity ?? null };
}

const metricRules: { id: string; metric: string; condition: ModelCondition }[] = [
  { id: 'biodigester.temperature_c.low', metric: 'temperature_c', condition: 'below' },
  { id: 'biodigester.h2s_ppm.high', metric: 'h2s_ppm', condition: 'above' },
  { id: 'biodigester.ph.high', metric: 'ph', condition: 'above' },
  { id: 'biodigester.battery_v.low', metric: 'battery_v', condition: 'below' },
];
// Halves between -10 and 10: thresholds and values often meet exactly (the boundary cases).
const value = fc.integer({ min: -20, max: 20 }).map((n) => n / 2);

describe('evaluation by the effective rule of each unit', () => {
  it('metric rules on stored readings: the overridden unit follows its override, the other unit the kind rule', async () => {
    let ts = Date.now();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...metricRules).chain((rule) =>
          fc.record({
            rule: fc.constant(rule),
            kind: validThresholds(rule.condition, value),
            override: validThresholds(rule.condition, value),
            values: fc.array(value, { minLength: 1, maxLength: 10 }),
          }),
        ),
        async ({ rule, kind, override, values }) => {
          const after = await configure(rule.id, kind, override);
          for (const v of values) {
            ts += 1000;
            alerts.stored(
              [
                { deviceId: 'ev-a', unitId: unitA },
                { deviceId: 'ev-b', unitId: unitB },
              ].map((d) => ({ ...d, ts: new Date(ts), values: { [rule.metric]: v } })),
            );
            await alerts.settled();
          }
          expect(await outcome(after, 'ev-a', rule.id)).toEqual(
            modelAlert(rule.condition, override, values),
          );
          expect(await outcome(after, 'ev-b', rule.id)).toEqual(
            modelAlert(rule.condition, kind, values),
          );
        },
      ),
      { numRuns: 40 },
    );
  });

  it('device sweep rules: offline minutes and certificate expiry by the unit’s own limits', async () => {
    const pool = t.database.pool;
    const start = Date.now();
    clock = start;
    // Both sensors last seen 30 minutes ago; A's certificate expires in 20 days, B's too.
    await pool.query(
      `UPDATE devices SET status = 'active', online = false, last_seen_at = $1 WHERE id IN ('ev-a', 'ev-b')`,
      [new Date(start - 30 * 60_000)],
    );
    for (const d of ['ev-a', 'ev-b'])
      await pool.query(
        `INSERT INTO certificates (serial, device_id, fingerprint_sha256, not_before, not_after, issued_by, pem) VALUES ($1, $2, $1, now(), $3, 'test', 'x')`,
        [`ab${d === 'ev-a' ? '1' : '2'}`, d, new Date(start + 20.5 * 86_400_000)],
      );
    // Unit A: offline only after an hour; certificate warning only within 10 days.
    await configure(
      'biodigester.device.offline',
      { warn: 15, critical: 120, clear: 15, enabled: true },
      {
        warn: 60,
        critical: 240,
        clear: 60,
        enabled: true,
      },
    );
    const after = await configure(
      'biodigester.device.cert_expiry',
      { warn: 30, critical: 7, clear: 30, enabled: true },
      null,
    );
    await pool.query(
      `INSERT INTO alert_rule_overrides (unit_id, rule_id, unit_kind, warn, critical, clear, enabled, updated_by_id) VALUES ($1, 'biodigester.device.offline', 'biodigester', 60, 240, 60, true, 'test'), ($1, 'biodigester.device.cert_expiry', 'biodigester', 10, 3, 10, true, 'test')`,
      [unitA],
    );
    alerts.invalidateRules();
    await alerts.sweep();
    expect(await outcome(after, 'ev-b', 'biodigester.device.offline')).toEqual({
      opened: 1,
      state: 'warning',
    });
    expect(await outcome(after, 'ev-b', 'biodigester.device.cert_expiry')).toEqual({
      opened: 1,
      state: 'warning',
    });
    expect(await outcome(after, 'ev-a', 'biodigester.device.offline')).toEqual({
      opened: 0,
      state: null,
    });
    expect(await outcome(after, 'ev-a', 'biodigester.device.cert_expiry')).toEqual({
      opened: 0,
      state: null,
    });
    // 70 minutes offline, 11 days left: A's own offline limit is passed, not its expiry limit.
    clock = start + 40 * 60_000 + 9.5 * 86_400_000;
    await alerts.sweep();
    expect(await outcome(after, 'ev-a', 'biodigester.device.offline')).toMatchObject({
      opened: 1,
    });
    expect(await outcome(after, 'ev-a', 'biodigester.device.cert_expiry')).toEqual({
      opened: 0,
      state: null,
    });
  });
});
