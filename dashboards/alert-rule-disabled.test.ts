import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, testLogger, type TestDatabase } from '../test/db.ts';
import { createAlertService, type AlertService } from './alert-service.ts';

/**
 * A rule switched off no longer looks at its alerts, so nothing would ever close the ones open
 * under it: the sweep closes them, per unit by its effective rule (the unit's override if it has
 * one, else the kind's rule). Generated: the kind rule on or off, each of two units with no
 * override, an override on, or an override off; both units' alerts open before the change.
 */
const RULE = 'biodigester.ph.high';
let t: TestDatabase;
let alerts: AlertService;
const units: string[] = [];
const devices = ['off-a', 'off-b'];

beforeAll(async () => {
  t = await createTestDatabase();
  const pool = t.database.pool;
  alerts = createAlertService({ pool, logger: testLogger, notify: false });
  await alerts.ensureDefaults();
  const site = (
    await pool.query<{ id: string }>(`INSERT INTO sites (name) VALUES ('Off') RETURNING id`)
  ).rows[0]!.id;
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', 'A'), ($1, 'biodigester', 'B') RETURNING id`,
    [site],
  );
  units.push(...rows.map((r) => r.id));
  await pool.query(
    // Active: the sweep closes the alerts of devices that are not (suspended, retired).
    `INSERT INTO devices (id, unit_id, kind, status) VALUES ($1, $3, 'biodigester', 'active'), ($2, $4, 'biodigester', 'active')`,
    [...devices, ...units],
  );
}, 120_000);

type Override = 'none' | 'on' | 'off';

describe('switching a rule off', () => {
  it('closes the open alerts of exactly the units for which it is now off, and no others', async () => {
    const pool = t.database.pool;
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.constantFrom<Override>('none', 'on', 'off'),
        fc.constantFrom<Override>('none', 'on', 'off'),
        async (kindOn, ...overrides) => {
          // Everything on, no overrides, no open alert; then pH 8.5 opens one per device.
          await pool.query(
            `UPDATE alerts SET status = 'closed', closed_at = now() WHERE status = 'open'`,
          );
          await pool.query(`DELETE FROM alert_rule_overrides`);
          await pool.query(`UPDATE alert_rules SET enabled = true WHERE id = $1`, [RULE]);
          alerts.reset();
          alerts.invalidateRules();
          const at = new Date();
          alerts.stored(
            devices.map((d, i) => ({
              deviceId: d,
              unitId: units[i]!,
              ts: at,
              values: { ph: 8.5 },
            })),
          );
          await alerts.settled();
          const openNow = async () =>
            (
              await pool.query<{ device_id: string }>(
                `SELECT device_id FROM alerts WHERE rule_id = $1 AND status = 'open' ORDER BY device_id`,
                [RULE],
              )
            ).rows.map((r) => r.device_id);
          expect(await openNow()).toEqual(devices);

          await pool.query(`UPDATE alert_rules SET enabled = $2 WHERE id = $1`, [RULE, kindOn]);
          for (const [i, o] of overrides.entries())
            if (o !== 'none')
              await pool.query(
                `INSERT INTO alert_rule_overrides (unit_id, rule_id, unit_kind, warn, critical, clear, enabled, updated_by_id)
                 VALUES ($1, $2, 'biodigester', 7.8, 8.2, 7.7, $3, 'test')`,
                [units[i], RULE, o === 'on'],
              );
          alerts.invalidateRules();
          await alerts.sweep();
          await alerts.settled();
          const stillOn = devices.filter((_, i) =>
            overrides[i] === 'none' ? kindOn : overrides[i] === 'on',
          );
          expect(await openNow()).toEqual(stillOn);

          // And a device of a unit whose rule is on still alerts anew afterwards; one whose rule
          // is off does not.
          await pool.query(
            `UPDATE alerts SET status = 'closed', closed_at = now() WHERE status = 'open'`,
          );
          alerts.reset();
          alerts.stored(
            devices.map((d, i) => ({
              deviceId: d,
              unitId: units[i]!,
              ts: new Date(at.getTime() + 1000),
              values: { ph: 8.6 },
            })),
          );
          await alerts.settled();
          expect(await openNow()).toEqual(stillOn);
        },
      ),
      { numRuns: 18 },
    );
  });
});
