import type { Queryable } from '../db/timeseries.ts';
import type { Condition, Severity } from './alert-rules.ts';

/**
 * The SQL of alerts: rules, alerts, and the webhook outbox (`alert_notifications`). Every
 * function takes the query handle it runs on: a pool, a transaction of db/transaction.ts, or a
 * caller's scoped transaction (db/scoped.ts), so the caller decides atomicity and scope.
 */

export interface Rule {
  id: string;
  unitKind: string;
  metric: string | null;
  condition: Condition;
  warn: number;
  critical: number | null;
  clear: number;
  title: string;
  enabled: boolean;
}

export interface RuleThresholds {
  warn: number;
  critical: number | null;
  clear: number;
  enabled: boolean;
}

export const alertRepo = {
  /** Every rule, switched off or not: a unit's override may switch one on for that unit. */
  rules: async (q: Queryable): Promise<Rule[]> =>
    (
      await q.query<Rule>(
        `SELECT id, unit_kind AS "unitKind", metric, condition, warn, critical, clear, title, enabled FROM alert_rules ORDER BY id`,
      )
    ).rows,

  /** One rule, share-locked: its thresholds cannot change under an override being validated. */
  ruleForShare: async (q: Queryable, id: string): Promise<Rule | undefined> =>
    (
      await q.query<Rule>(
        `SELECT id, unit_kind::text AS "unitKind", metric, condition, warn, critical, clear, title, enabled FROM alert_rules WHERE id = $1 FOR SHARE`,
        [id],
      )
    ).rows[0],

  openAlerts: async (q: Queryable) =>
    (
      await q.query<{ id: string; rule_id: string; device_id: string; severity: Severity }>(
        `SELECT id, rule_id, device_id, severity FROM alerts WHERE status = 'open'`,
      )
    ).rows,

  deviceKinds: async (q: Queryable, deviceIds: string[]) =>
    (
      await q.query<{ id: string; kind: string }>(
        `SELECT id, kind FROM devices WHERE id = ANY($1::text[])`,
        [deviceIds],
      )
    ).rows,

  /** The new alert's id, or undefined when one is already open for this rule and device. */
  async open(
    q: Queryable,
    a: {
      ruleId: string;
      deviceId: string;
      unitId: string;
      severity: Severity;
      at: Date;
      value: number;
    },
  ): Promise<number | undefined> {
    const r = await q.query<{ id: string }>(
      `INSERT INTO alerts (rule_id, device_id, unit_id, severity, opened_at, open_value, last_value, last_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $5)
       ON CONFLICT (rule_id, device_id) WHERE status = 'open' DO NOTHING RETURNING id`,
      [a.ruleId, a.deviceId, a.unitId, a.severity, a.at, a.value],
    );
    return r.rows[0] ? Number(r.rows[0].id) : undefined;
  },

  /** Escalates or closes an open alert; false when it is no longer open. */
  async move(
    q: Queryable,
    a: { id: number; severity: Severity; status: string; at: Date; value: number },
  ): Promise<boolean> {
    const r = await q.query(
      `UPDATE alerts SET severity = $2, status = $3, closed_at = CASE WHEN $3 = 'closed' THEN $4::timestamptz END, last_value = $5, last_at = $4 WHERE id = $1 AND status = 'open' RETURNING id`,
      [a.id, a.severity, a.status, a.at, a.value],
    );
    return r.rows.length > 0;
  },

  async addNotification(
    q: Queryable,
    alertId: number,
    event: string,
    payload: unknown,
  ): Promise<void> {
    await q.query(
      `INSERT INTO alert_notifications (alert_id, event, payload) VALUES ($1, $2, $3)`,
      [alertId, event, JSON.stringify(payload)],
    );
  },

  /** Writes a default rule unless it exists (an operator's changes are kept). */
  async ensureRule(q: Queryable, r: Omit<Rule, 'enabled'>): Promise<void> {
    await q.query(
      `INSERT INTO alert_rules (id, unit_kind, metric, condition, warn, critical, clear, title) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
      [r.id, r.unitKind, r.metric, r.condition, r.warn, r.critical, r.clear, r.title],
    );
  },

  /** Closes the open alerts of devices that are no longer active; returns which. */
  closeForInactiveDevices: async (q: Queryable, at: Date) =>
    (
      await q.query<{ rule_id: string; device_id: string }>(
        `UPDATE alerts a SET status = 'closed', closed_at = $1 FROM devices d WHERE a.device_id = d.id AND a.status = 'open' AND d.status <> 'active' RETURNING a.rule_id, a.device_id`,
        [at],
      )
    ).rows,

  /**
   * Open alerts whose rule is switched off for their unit (the unit's override if it has one,
   * else the kind's rule): closed, as the evaluator no longer looks at them and nothing else
   * would ever close them.
   */
  closeForDisabledRules: async (q: Queryable, at: Date) =>
    (
      await q.query<{ rule_id: string; device_id: string }>(
        `UPDATE alerts a SET status = 'closed', closed_at = $1
           FROM alert_rules r
          WHERE a.rule_id = r.id AND a.status = 'open'
            AND NOT coalesce(
              (SELECT o.enabled FROM alert_rule_overrides o WHERE o.rule_id = a.rule_id AND o.unit_id = a.unit_id),
              r.enabled)
          RETURNING a.rule_id, a.device_id`,
        [at],
      )
    ).rows,

  /** Active devices with what the sweep measures: presence and the newest active certificate's expiry. */
  activeDeviceConditions: async (q: Queryable) =>
    (
      await q.query<{
        id: string;
        unit_id: string;
        kind: string;
        online: boolean;
        last_seen_at: Date | null;
        not_after: Date | null;
      }>(
        `SELECT d.id, d.unit_id, d.kind, d.online, d.last_seen_at,
                (SELECT max(c.not_after) FROM certificates c WHERE c.device_id = d.id AND c.status = 'active') AS not_after
         FROM devices d WHERE d.status = 'active'`,
      )
    ).rows,

  /** The alert, locked for an acknowledgement in this transaction. */
  lockForAck: async (q: Queryable, id: number) =>
    (
      await q.query<{
        acknowledged_by: string | null;
        status: string;
        unit_id: string;
        device_id: string;
        rule_id: string;
        severity: string;
        title: string;
      }>(
        `SELECT actor_display_name(a.acknowledged_by_id) AS acknowledged_by, a.status, a.unit_id, a.device_id, a.rule_id, a.severity, r.title FROM alerts a JOIN alert_rules r ON r.id = a.rule_id WHERE a.id = $1 FOR UPDATE OF a`,
        [id],
      )
    ).rows[0],

  /** `byId` is the acknowledger's id, never a name: the row outlives the person's erasure. */
  async acknowledge(q: Queryable, id: number, byId: string, note: string): Promise<void> {
    await q.query(
      `UPDATE alerts SET acknowledged_at = now(), acknowledged_by_id = $2, ack_note = $3 WHERE id = $1`,
      [id, byId, note],
    );
  },

  /** The rule, locked for a change in this transaction. */
  lockRule: async (q: Queryable, id: string) =>
    (
      await q.query<{ condition: string } & RuleThresholds>(
        `SELECT condition, warn, critical, clear, enabled FROM alert_rules WHERE id = $1 FOR UPDATE`,
        [id],
      )
    ).rows[0],

  async updateRule(q: Queryable, id: string, b: RuleThresholds): Promise<void> {
    await q.query(
      `UPDATE alert_rules SET warn = $2, critical = $3, clear = $4, enabled = $5, updated_at = now() WHERE id = $1`,
      [id, b.warn, b.critical, b.clear, b.enabled],
    );
  },

  /** Due webhook deliveries. SKIP LOCKED: a second gateway (or an overlapping pass) never sends the same row twice at once. */
  claimDeliveries: async (q: Queryable, maxAttempts: number) =>
    (
      await q.query<{ id: string; event: string; payload: unknown; attempts: number }>(
        `SELECT id, event, payload, attempts FROM alert_notifications WHERE delivered_at IS NULL AND attempts < $1 AND next_attempt_at <= now()
         ORDER BY id LIMIT 20 FOR UPDATE SKIP LOCKED`,
        [maxAttempts],
      )
    ).rows,

  async delivered(q: Queryable, id: string): Promise<void> {
    await q.query(
      `UPDATE alert_notifications SET delivered_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = $1`,
      [id],
    );
  },

  async deliveryFailed(q: Queryable, id: string, error: string, backoffS: number): Promise<void> {
    await q.query(
      `UPDATE alert_notifications SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1`,
      [id, error, backoffS],
    );
  },
};
