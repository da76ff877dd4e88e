import type pg from 'pg';
import type { Logger } from 'pino';
import type { RowIn } from '../ingest/batch-writer.ts';
import type { Queryable } from '../db/timeseries.ts';
import type { DbExecutor } from '../db/scoped.ts';
import { rollback, withTransaction } from '../db/transaction.ts';
import { indexOverrides, rulesForUnit, type OverrideIndex } from './alert-override-fns.ts';
import { alertOverrideRepo } from './alert-override-repo.ts';
import { alertRepo, type Rule } from './alert-repo.ts';
import { defaultRules, transition, type Severity, type Transition } from './alert-rules.ts';
import type { LiveHub } from './live-hub.ts';

/**
 * The alert evaluator. Stored readings (after their commit) and a periodic sweep (offline
 * devices, certificate expiry) feed the hysteresis state machine of dashboards/alert-rules.ts;
 * each transition is one transaction that writes the alert and, when a webhook is configured,
 * its delivery (an outbox, dashboards/webhook.ts). Work is serial and coalesced: under load only
 * the newest value per device and metric is evaluated, so ingest never waits for alerts.
 * One gateway process evaluates (like broker presence); the open-alert index keeps it honest.
 * Each observation is judged by its unit's effective rules (alert-override-fns.ts): the kind's
 * rule, or the unit's own thresholds where a technician set them.
 */

interface Observation {
  deviceId: string;
  unitId: string;
  kind: string;
  /** A metric name, or the device condition it measures. */
  subject: string;
  value: number;
  at: Date;
}

/**
 * Told by the API, inside the transaction that changed alert rules or a unit's overrides. In
 * `thamani start` it says so over the cluster bus at the commit, to every node's evaluator
 * (app/cluster.ts `rulesChanged`); an alert service alone (tests) reloads at once.
 */
export interface RulesChangedSink {
  invalidateRules(tx: DbExecutor): void | Promise<void>;
}

export interface AlertServiceDeps {
  pool: pg.Pool;
  logger: Logger;
  hub?: LiveHub;
  /** Write webhook deliveries (ALERT_WEBHOOK_URL is set). */
  notify: boolean;
  onOutbox?: () => void;
  /**
   * Notifications to people (notifications/notification-outbox.ts): queued in the transition's
   * transaction (never fails it), then told after commit.
   */
  notifications?: {
    enqueue(q: Queryable, t: AlertTransitionEvent): Promise<unknown>;
    queued(): void;
  };
  now?: () => Date;
}

export interface AlertTransitionEvent {
  alertId: number;
  ruleId: string;
  title: string;
  severity: Severity;
  event: 'opened' | 'escalated' | 'closed';
  deviceId: string;
  unitId: string;
  value: number;
  at: Date;
}

export function createAlertService(deps: AlertServiceDeps) {
  const now = deps.now ?? (() => new Date());
  let rules: Rule[] | undefined;
  let overrides: OverrideIndex = new Map();
  const open = new Map<string, { id: number; severity: Severity }>();
  const kinds = new Map<string, string>();
  const pending = new Map<string, Observation>();
  let loaded: Promise<void> | undefined;
  let chain: Promise<void> = Promise.resolve();
  let scheduled = false;

  async function load(): Promise<void> {
    rules = await alertRepo.rules(deps.pool);
    overrides = indexOverrides(await alertOverrideRepo.list(deps.pool));
    if (open.size === 0) {
      for (const a of await alertRepo.openAlerts(deps.pool))
        open.set(`${a.rule_id}|${a.device_id}`, { id: Number(a.id), severity: a.severity });
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
    for (const d of await alertRepo.deviceKinds(deps.pool, missing)) kinds.set(d.id, d.kind);
  }

  function notification(
    event: string,
    a: {
      id: number;
      ruleId: string;
      deviceId: string;
      unitId: string;
      severity: Severity;
      status: string;
      value: number;
      title: string;
    },
  ) {
    return {
      event,
      at: now().toISOString(),
      alert: {
        id: a.id,
        rule: a.ruleId,
        title: a.title,
        severity: a.severity,
        status: a.status,
        deviceId: a.deviceId,
        unitId: a.unitId,
        value: a.value,
      },
    };
  }

  async function apply(
    rule: Rule,
    obs: Observation,
    t: Exclude<Transition, { kind: 'none' }>,
  ): Promise<void> {
    const key = `${rule.id}|${obs.deviceId}`;
    let severity: Severity = 'warning';
    let status = 'open';
    let event: 'opened' | 'escalated' | 'closed' = 'opened';
    const id = await withTransaction(deps.pool, async (q) => {
      let id: number | undefined;
      if (t.kind === 'open') {
        id = await alertRepo.open(q, {
          ruleId: rule.id,
          deviceId: obs.deviceId,
          unitId: obs.unitId,
          severity: t.severity,
          at: obs.at,
          value: obs.value,
        });
        severity = t.severity;
        event = 'opened';
      } else {
        const cur = open.get(key)!;
        id = cur.id;
        severity = t.kind === 'escalate' ? t.severity : cur.severity;
        status = t.kind === 'close' ? 'closed' : 'open';
        event = t.kind === 'close' ? 'closed' : 'escalated';
        if (!(await alertRepo.move(q, { id, severity, status, at: obs.at, value: obs.value })))
          id = undefined;
      }
      // Someone else moved it first (another process, an operator closing a device): reload.
      if (id === undefined) return rollback;
      const payload = notification(event, {
        id,
        ruleId: rule.id,
        deviceId: obs.deviceId,
        unitId: obs.unitId,
        severity,
        status,
        value: obs.value,
        title: rule.title,
      });
      if (deps.notify) await alertRepo.addNotification(q, id, event, payload);
      await deps.notifications?.enqueue(q, {
        ...{ alertId: id, ruleId: rule.id, title: rule.title, severity, event },
        ...{ deviceId: obs.deviceId, unitId: obs.unitId, value: obs.value, at: obs.at },
      });
      return id;
    });
    if (id === rollback) {
      loaded = undefined;
      open.clear();
      return;
    }
    if (status === 'open') open.set(key, { id, severity });
    else open.delete(key);
    deps.hub?.publish({
      type: 'alert',
      alert: {
        id,
        unitId: obs.unitId,
        deviceId: obs.deviceId,
        ruleId: rule.id,
        title: rule.title,
        severity,
        status,
        value: obs.value,
      },
    });
    if (deps.notify) deps.onOutbox?.();
    deps.notifications?.queued();
    deps.logger.info(
      { alert: id, rule: rule.id, device: obs.deviceId, event, severity, value: obs.value },
      `alert ${event}`,
    );
  }

  async function evaluate(observations: Observation[]): Promise<void> {
    await ready();
    for (const obs of observations) {
      for (const rule of rulesForUnit(rules ?? [], overrides, obs.unitId, obs.kind)) {
        if (!rule.enabled || (rule.metric ?? rule.condition) !== obs.subject) continue;
        const t = transition(rule, open.get(`${rule.id}|${obs.deviceId}`), obs.value);
        if (t.kind !== 'none') await apply(rule, obs, t);
      }
    }
  }

  function run(work: () => Promise<void>): Promise<void> {
    chain = chain
      .then(work)
      .catch((err: unknown) => deps.logger.error({ err }, 'alert evaluation failed'));
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
      for (const r of defaultRules) await alertRepo.ensureRule(deps.pool, r);
    },
    /**
     * This node has just become the alert leader (app/leader-lease.ts): what it remembers of open
     * alerts may be stale (another node moved them meanwhile), so the next evaluation reloads.
     */
    reset(): void {
      loaded = undefined;
      open.clear();
    },
    /** Rules or a unit's overrides changed (API): the next evaluation reloads them. */
    invalidateRules(): void {
      loaded = undefined;
    },
    /**
     * Stored readings, after their commit (ingest's onStored; on the alert leader also those
     * other nodes ingested, app/live-relay.ts).
     */
    stored(rows: readonly Pick<RowIn, 'deviceId' | 'unitId' | 'ts' | 'values'>[]): void {
      for (const r of rows) {
        for (const [metric, value] of Object.entries(r.values)) {
          const k = `${r.deviceId}|${metric}`;
          const cur = pending.get(k);
          if (!cur || cur.at <= r.ts)
            pending.set(k, {
              deviceId: r.deviceId,
              unitId: r.unitId,
              kind: kinds.get(r.deviceId) ?? '',
              subject: metric,
              value,
              at: r.ts,
            });
        }
      }
      if (scheduled) return;
      scheduled = true;
      void run(async () => {
        await kindsOf([
          ...new Set([...pending.values()].filter((o) => !o.kind).map((o) => o.deviceId)),
        ]);
        for (const o of pending.values()) if (!o.kind) o.kind = kinds.get(o.deviceId) ?? '';
        await drainPending();
      });
    },
    /** Device conditions: minutes offline, days until the newest active certificate expires. */
    sweep(): Promise<void> {
      return run(async () => {
        const at = now();
        for (const c of [
          ...(await alertRepo.closeForInactiveDevices(deps.pool, at)),
          ...(await alertRepo.closeForDisabledRules(deps.pool, at)),
        ])
          open.delete(`${c.rule_id}|${c.device_id}`);
        const obs: Observation[] = [];
        for (const d of await alertRepo.activeDeviceConditions(deps.pool)) {
          kinds.set(d.id, d.kind);
          if (d.online || d.last_seen_at) {
            const minutes = d.online ? 0 : (at.getTime() - d.last_seen_at!.getTime()) / 60_000;
            obs.push({
              deviceId: d.id,
              unitId: d.unit_id,
              kind: d.kind,
              subject: 'offline_minutes',
              value: Math.round(minutes * 10) / 10,
              at,
            });
          }
          if (d.not_after)
            obs.push({
              deviceId: d.id,
              unitId: d.unit_id,
              kind: d.kind,
              subject: 'cert_expiry_days',
              value: Math.floor((d.not_after.getTime() - at.getTime()) / 86_400_000),
              at,
            });
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
