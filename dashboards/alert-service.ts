import type pg from 'pg';
import type { Logger } from 'pino';
import type { RowIn } from '../ingest/batch-writer.ts';
import { defaultRules, transition, type Condition, type Severity, type Transition } from './alert-rules.ts';
import type { LiveHub } from './live-hub.ts';

/**
 * The alert evaluator. Stored readings (after their commit) and a periodic sweep (offline
 * devices, certificate expiry) feed the hysteresis state machine of dashboards/alert-rules.ts;
 * each transition is one transaction that writes the alert and, when a webhook is configured,
 * its delivery (an outbox, dashboards/webhook.ts). Work is serial and coalesced: under load only
 * the newest value per device and metric is evaluated, so ingest never waits for alerts.
 * One gateway process evaluates (like broker presence); the open-alert index keeps it honest.
 */

interface Rule {
  id: string;
  unitKind: string;
  metric: string | null;
  condition: Condition;
  warn: number;
  critical: number | null;
  clear: number;
  title: string;
}

interface Observation {
  deviceId: string;
  unitId: string;
  kind: string;
  /** A metric name, or the device condition it measures. */
  subject: string;
  value: number;
  at: Date;
}

export interface AlertServiceDeps {
  pool: pg.Pool;
  logger: Logger;
  hub?: LiveHub;
  /** Write webhook deliveries (ALERT_WEBHOOK_URL is set). */
  notify: boolean;
  onOutbox?: () => void;
  now?: () => Date;
}

export function createAlertService(deps: AlertServiceDeps) {
  const now = deps.now ?? (() => new Date());
  let rules: Rule[] | undefined;
  const open = new Map<string, { id: number; severity: Severity }>();
  const kinds = new Map<string, string>();
  const pending = new Map<string, Observation>();
  let loaded: Promise<void> | undefined;
  let chain: Promise<void> = Promise.resolve();
  let scheduled = false;

  async function load(): Promise<void> {
    const r = await deps.pool.query<Rule>(`SELECT id, unit_kind AS "unitKind", metric, condition, warn, critical, clear, title FROM alert_rules WHERE enabled`);
    rules = r.rows;
    if (open.size === 0) {
      const o = await deps.pool.query<{ id: string; rule_id: string; device_id: string; severity: Severity }>(`SELECT id, rule_id, device_id, severity FROM alerts WHERE status = 'open'`);
      for (const a of o.rows) open.set(`${a.rule_id}|${a.device_id}`, { id: Number(a.id), severity: a.severity });
    }
  }
  // A load that failed (the database was down) is tried again by the next evaluation: kept, its
  // rejection would fail every evaluation after it until the rules next changed.
  const ready = (): Promise<void> =>
    (loaded ??= load().catch((err: unknown) => {
      loaded = undefined;
      throw err;
    }));

  async function kindsOf(deviceIds: string[]): Promise<void> {
    const missing = deviceIds.filter((d) => !kinds.has(d));
    if (missing.length === 0) return;
    const r = await deps.pool.query<{ id: string; kind: string }>(`SELECT id, kind FROM devices WHERE id = ANY($1::text[])`, [missing]);
    for (const d of r.rows) kinds.set(d.id, d.kind);
  }

  function notification(event: string, a: { id: number; ruleId: string; deviceId: string; unitId: string; severity: Severity; status: string; value: number; title: string }) {
    return { event, at: now().toISOString(), alert: { id: a.id, rule: a.ruleId, title: a.title, severity: a.severity, status: a.status, deviceId: a.deviceId, unitId: a.unitId, value: a.value } };
  }

  async function apply(rule: Rule, obs: Observation, t: Exclude<Transition, { kind: 'none' }>): Promise<void> {
    const key = `${rule.id}|${obs.deviceId}`;
    const client = await deps.pool.connect();
    try {
      await client.query('BEGIN');
      let id: number | undefined;
      let severity: Severity;
      let status = 'open';
      let event: 'opened' | 'escalated' | 'closed';
      if (t.kind === 'open') {
        const r = await client.query<{ id: string }>(
          `INSERT INTO alerts (rule_id, device_id, unit_id, severity, opened_at, open_value, last_value, last_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $5)
           ON CONFLICT (rule_id, device_id) WHERE status = 'open' DO NOTHING RETURNING id`,
          [rule.id, obs.deviceId, obs.unitId, t.severity, obs.at, obs.value],
        );
        id = r.rows[0] ? Number(r.rows[0].id) : undefined;
        severity = t.severity;
        event = 'opened';
      } else {
        const cur = open.get(key)!;
        id = cur.id;
        severity = t.kind === 'escalate' ? t.severity : cur.severity;
        status = t.kind === 'close' ? 'closed' : 'open';
        event = t.kind === 'close' ? 'closed' : 'escalated';
        const r = await client.query(
          `UPDATE alerts SET severity = $2, status = $3, closed_at = CASE WHEN $3 = 'closed' THEN $4::timestamptz END, last_value = $5, last_at = $4 WHERE id = $1 AND status = 'open'`,
          [id, severity, status, obs.at, obs.value],
        );
        if (r.rowCount === 0) id = undefined;
      }
      if (id === undefined) {
        // Someone else moved it first (another process, an operator closing a device): reload.
        await client.query('ROLLBACK');
        loaded = undefined;
        open.clear();
        return;
      }
      const payload = notification(event, { id, ruleId: rule.id, deviceId: obs.deviceId, unitId: obs.unitId, severity, status, value: obs.value, title: rule.title });
      if (deps.notify) await client.query(`INSERT INTO alert_notifications (alert_id, event, payload) VALUES ($1, $2, $3)`, [id, event, JSON.stringify(payload)]);
      await client.query('COMMIT');
      if (status === 'open') open.set(key, { id, severity });
      else open.delete(key);
      deps.hub?.publish({ type: 'alert', alert: { id, unitId: obs.unitId, deviceId: obs.deviceId, ruleId: rule.id, title: rule.title, severity, status, value: obs.value } });
      if (deps.notify) deps.onOutbox?.();
      deps.logger.info({ alert: id, rule: rule.id, device: obs.deviceId, event, severity, value: obs.value }, `alert ${event}`);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async function evaluate(observations: Observation[]): Promise<void> {
    await ready();
    for (const obs of observations) {
      for (const rule of rules ?? []) {
        if (rule.unitKind !== obs.kind || (rule.metric ?? rule.condition) !== obs.subject) continue;
        const t = transition(rule, open.get(`${rule.id}|${obs.deviceId}`), obs.value);
        if (t.kind !== 'none') await apply(rule, obs, t);
      }
    }
  }

  function run(work: () => Promise<void>): Promise<void> {
    chain = chain.then(work).catch((err: unknown) => deps.logger.error({ err }, 'alert evaluation failed'));
    return chain;
  }

  function drainPending(): Promise<void> {
    scheduled = false;
    const batch = [...pending.values()];
    pending.clear();
    return evaluate(batch);
  }

  return {
    /** Writes the default rules that are missing (an operator's changes are kept). */
    async ensureDefaults(): Promise<void> {
      for (const r of defaultRules) {
        await deps.pool.query(
          `INSERT INTO alert_rules (id, unit_kind, metric, condition, warn, critical, clear, title) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
          [r.id, r.unitKind, r.metric, r.condition, r.warn, r.critical, r.clear, r.title],
        );
      }
    },
    /** Rules changed (API): the next evaluation reloads them. */
    invalidateRules(): void {
      loaded = undefined;
    },
    /** Stored readings, after their commit (ingest's onStored). */
    stored(rows: readonly RowIn[]): void {
      for (const r of rows) {
        for (const [metric, value] of Object.entries(r.values)) {
          const k = `${r.deviceId}|${metric}`;
          const cur = pending.get(k);
          if (!cur || cur.at <= r.ts) pending.set(k, { deviceId: r.deviceId, unitId: r.unitId, kind: kinds.get(r.deviceId) ?? '', subject: metric, value, at: r.ts });
        }
      }
      if (scheduled) return;
      scheduled = true;
      void run(async () => {
        await kindsOf([...new Set([...pending.values()].filter((o) => !o.kind).map((o) => o.deviceId))]);
        for (const o of pending.values()) if (!o.kind) o.kind = kinds.get(o.deviceId) ?? '';
        await drainPending();
      });
    },
    /** Device conditions: minutes offline, days until the newest active certificate expires. */
    sweep(): Promise<void> {
      return run(async () => {
        const at = now();
        const closed = await deps.pool.query<{ rule_id: string; device_id: string }>(
          `UPDATE alerts a SET status = 'closed', closed_at = $1 FROM devices d WHERE a.device_id = d.id AND a.status = 'open' AND d.status <> 'active' RETURNING a.rule_id, a.device_id`,
          [at],
        );
        for (const c of closed.rows) open.delete(`${c.rule_id}|${c.device_id}`);
        const r = await deps.pool.query<{ id: string; unit_id: string; kind: string; online: boolean; last_seen_at: Date | null; not_after: Date | null }>(
          `SELECT d.id, d.unit_id, d.kind, d.online, d.last_seen_at,
                  (SELECT max(c.not_after) FROM certificates c WHERE c.device_id = d.id AND c.status = 'active') AS not_after
           FROM devices d WHERE d.status = 'active'`,
        );
        const obs: Observation[] = [];
        for (const d of r.rows) {
          kinds.set(d.id, d.kind);
          if (d.online || d.last_seen_at) {
            const minutes = d.online ? 0 : (at.getTime() - d.last_seen_at!.getTime()) / 60_000;
            obs.push({ deviceId: d.id, unitId: d.unit_id, kind: d.kind, subject: 'offline_minutes', value: Math.round(minutes * 10) / 10, at });
          }
          if (d.not_after) obs.push({ deviceId: d.id, unitId: d.unit_id, kind: d.kind, subject: 'cert_expiry_days', value: Math.floor((d.not_after.getTime() - at.getTime()) / 86_400_000), at });
        }
        await evaluate(obs);
      });
    },
    /** Runs the sweep every `everyMs`; returns the stop function. */
    start(everyMs: number): () => Promise<void> {
      const timer = setInterval(() => void this.sweep(), everyMs);
      timer.unref();
      void this.sweep();
      return async () => {
        clearInterval(timer);
        await chain;
      };
    },
    /** Resolves when everything handed in so far is evaluated (tests, shutdown). */
    settled: (): Promise<void> => chain,
  };
}

export type AlertService = ReturnType<typeof createAlertService>;
