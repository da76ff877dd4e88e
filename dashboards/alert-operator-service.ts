import type { AuditActor, AuditLog } from '../audit/index.ts';
import { asQueryable, type DbExecutor } from '../db/scoped.ts';
import { alertRepo, type RuleThresholds } from './alert-repo.ts';
import { lowIsBad } from './alert-rules.ts';
import type { AlertService } from './alert-service.ts';
import { DashboardErrors } from './dashboard-errors.ts';
import type { LiveHub } from './live-hub.ts';

/**
 * What an operator does to alerts: acknowledge one with a note, change a rule's thresholds. Each
 * runs in the caller's transaction (their scope: row-level security decides which alerts exist
 * for them), so the change and its audit entry commit together.
 */
export function createAlertOperator(deps: {
  audit: AuditLog;
  hub: LiveHub;
  alerts?: Pick<AlertService, 'invalidateRules'>;
}) {
  return {
    /**
     * The acknowledger is kept as an id (`actor.actorId`), never a name: the alert row and the
     * signed entry outlive the person's erasure; displays look the name up
     * (actor_display_name()). `displayName` is only echoed back to the caller.
     */
    async acknowledge(
      tx: DbExecutor,
      input: { id: number; note: string; displayName: string; actor: AuditActor },
    ) {
      const q = asQueryable(tx);
      const { id, note } = input;
      const before = await alertRepo.lockForAck(q, id);
      if (!before) throw new DashboardErrors.AlertNotFound(String(id));
      if (before.acknowledged_by)
        throw new DashboardErrors.AlreadyAcknowledged(String(id), before.acknowledged_by);
      await alertRepo.acknowledge(q, id, input.actor.actorId, note);
      await deps.audit.record(
        {
          ...input.actor,
          action: 'alert.acknowledge',
          targetType: 'alert',
          targetId: String(id),
          before: { acknowledged: false },
          after: { acknowledged: true, note },
        },
        tx,
      );
      deps.hub.publish({
        type: 'alert',
        alert: {
          id,
          unitId: before.unit_id,
          deviceId: before.device_id,
          ruleId: before.rule_id,
          title: before.title,
          severity: before.severity,
          status: before.status,
          value: null,
        },
      });
      return { id, acknowledgedById: input.actor.actorId, acknowledgedBy: input.displayName, note };
    },

    async updateRule(
      tx: DbExecutor,
      input: { id: string; thresholds: RuleThresholds; actor: AuditActor },
    ) {
      const q = asQueryable(tx);
      const { id, thresholds: b } = input;
      const rule = await alertRepo.lockRule(q, id);
      if (!rule) throw new DashboardErrors.RuleNotFound(id);
      const low = lowIsBad(rule.condition);
      // The clear threshold sits on the healthy side of warn (hysteresis), critical beyond it.
      if (low ? b.clear < b.warn : b.clear > b.warn)
        throw new DashboardErrors.RuleInvalid(
          `clear must be ${low ? '≥' : '≤'} warn for a "${rule.condition}" rule (it is the hysteresis band)`,
        );
      if (b.critical != null && (low ? b.critical > b.warn : b.critical < b.warn))
        throw new DashboardErrors.RuleInvalid(
          `critical must be ${low ? '≤' : '≥'} warn for a "${rule.condition}" rule`,
        );
      await alertRepo.updateRule(q, id, b);
      await deps.audit.record(
        {
          ...input.actor,
          action: 'alert_rule.update',
          targetType: 'alert_rule',
          targetId: id,
          before: rule,
          after: b,
        },
        tx,
      );
      deps.alerts?.invalidateRules();
      return { id, ...b };
    },
  };
}

export type AlertOperator = ReturnType<typeof createAlertOperator>;
