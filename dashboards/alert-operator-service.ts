import type { AuditActor, AuditLog } from '../audit/index.ts';
import { asQueryable, type DbExecutor } from '../db/scoped.ts';
import {
  indexOverrides,
  rulesForUnit,
  thresholdProblem,
  type ThresholdValues,
} from './alert-override-fns.ts';
import { alertOverrideRepo } from './alert-override-repo.ts';
import { alertRepo, type RuleThresholds } from './alert-repo.ts';
import type { RulesChangedSink } from './alert-service.ts';
import { DashboardErrors } from './dashboard-errors.ts';
import type { LiveHub } from './live-hub.ts';

/** Refuses thresholds that do not fit the rule's condition (one validator: kind rule and override). */
function check(condition: string, b: ThresholdValues): void {
  const problem = thresholdProblem(condition, b);
  if (problem)
    // The page translates `problem` (rules.invalid.<code>); the API answers the English message.
    throw Object.assign(new DashboardErrors.RuleInvalid(problem.message), { problem });
}

/**
 * What an operator does to alerts: acknowledge one with a note, change a rule's thresholds (for
 * every unit of its kind, or one unit's own). Each
 * runs in the caller's transaction (their scope: row-level security decides which alerts exist
 * for them), so the change and its audit entry commit together.
 */
export function createAlertOperator(deps: {
  audit: AuditLog;
  hub: LiveHub;
  alerts?: RulesChangedSink;
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
      check(rule.condition, b);
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
      await deps.alerts?.invalidateRules(tx);
      return { id, ...b };
    },

    /** The effective rules of a unit the caller may see: each kind rule with its override merged. */
    async unitRules(tx: DbExecutor, unitId: string) {
      const q = asQueryable(tx);
      const unit = await alertOverrideRepo.unit(q, unitId);
      if (!unit) throw new DashboardErrors.UnitNotFound(unitId);
      const own = indexOverrides(await alertOverrideRepo.list(q, [unitId]));
      const rules = await alertRepo.rules(q);
      const kind = new Map(rules.map((r) => [r.id, r]));
      return {
        unit,
        rules: rulesForUnit(rules, own, unitId, unit.kind).map((r) => ({
          ...r,
          kindRule: pickThresholds(kind.get(r.id)!),
        })),
      };
    },

    /** Sets one unit's own thresholds for a rule of its kind (audited with before and after). */
    async setOverride(
      tx: DbExecutor,
      input: { unitId: string; ruleId: string; thresholds: ThresholdValues; actor: AuditActor },
    ) {
      const q = asQueryable(tx);
      const { unitId, ruleId, thresholds: b } = input;
      const unit = await alertOverrideRepo.unit(q, unitId);
      if (!unit) throw new DashboardErrors.UnitNotFound(unitId);
      const rule = await alertRepo.ruleForShare(q, ruleId);
      // A rule of another kind does not exist for this unit.
      if (!rule || rule.unitKind !== unit.kind) throw new DashboardErrors.RuleNotFound(ruleId);
      check(rule.condition, b);
      const before = await alertOverrideRepo.lock(q, unitId, ruleId);
      await alertOverrideRepo.upsert(q, {
        ...b,
        unitId,
        ruleId,
        unitKind: unit.kind,
        by: input.actor.actorId,
      });
      await deps.audit.record(
        {
          ...input.actor,
          action: 'alert_rule.override',
          targetType: 'unit',
          targetId: unitId,
          before: { rule: ruleId, ...(before ?? { inherited: pickThresholds(rule) }) },
          after: { rule: ruleId, ...b },
        },
        tx,
      );
      await deps.alerts?.invalidateRules(tx);
      return { unitId, ruleId, ...b, overridden: true };
    },

    /** Removes a unit's override: the unit follows the kind's rule again (audited). */
    async removeOverride(
      tx: DbExecutor,
      input: { unitId: string; ruleId: string; actor: AuditActor },
    ) {
      const q = asQueryable(tx);
      const { unitId, ruleId } = input;
      const unit = await alertOverrideRepo.unit(q, unitId);
      if (!unit) throw new DashboardErrors.UnitNotFound(unitId);
      const before = await alertOverrideRepo.lock(q, unitId, ruleId);
      if (!before) throw new DashboardErrors.OverrideNotFound(ruleId, unitId);
      const rule = await alertRepo.ruleForShare(q, ruleId);
      await alertOverrideRepo.remove(q, unitId, ruleId);
      await deps.audit.record(
        {
          ...input.actor,
          action: 'alert_rule.override_remove',
          targetType: 'unit',
          targetId: unitId,
          before: { rule: ruleId, ...before },
          after: { rule: ruleId, inherited: rule ? pickThresholds(rule) : null },
        },
        tx,
      );
      await deps.alerts?.invalidateRules(tx);
      return { unitId, ruleId, ...(rule ? pickThresholds(rule) : {}), overridden: false };
    },
  };
}

const pickThresholds = (r: ThresholdValues): ThresholdValues => ({
  warn: r.warn,
  critical: r.critical,
  clear: r.clear,
  enabled: r.enabled,
});

export type AlertOperator = ReturnType<typeof createAlertOperator>;
