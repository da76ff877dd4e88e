import type { Queryable } from '../db/timeseries.ts';
import type { RuleOverride, ThresholdValues } from './alert-override-fns.ts';

/**
 * The SQL of per-unit thresholds (`alert_rule_overrides`). Like alert-repo.ts, every function
 * takes its query handle: the evaluator reads with the owner's pool, the API in the caller's
 * scoped transaction, where row-level security decides what exists for them (migration
 * alert_rule_overrides_security: read where the unit is visible, write only by fleet roles).
 */

const columns = `unit_id AS "unitId", rule_id AS "ruleId", warn, critical, clear, enabled, updated_by_id AS "updatedById", updated_at AS "updatedAt"`;

export const alertOverrideRepo = {
  /** Every override (the evaluator) or those of some units. */
  list: async (q: Queryable, unitIds?: readonly string[]): Promise<RuleOverride[]> =>
    (
      await q.query<RuleOverride>(
        unitIds
          ? `SELECT ${columns} FROM alert_rule_overrides WHERE unit_id = ANY($1::uuid[])`
          : `SELECT ${columns} FROM alert_rule_overrides`,
        unitIds ? [unitIds] : [],
      )
    ).rows,

  /** The unit (its kind), when the caller may see it. */
  unit: async (q: Queryable, unitId: string) =>
    (
      await q.query<{ id: string; kind: string; name: string }>(
        `SELECT id, kind::text AS kind, name FROM units WHERE id = $1`,
        [unitId],
      )
    ).rows[0],

  /** The override, locked for a change in this transaction. */
  lock: async (q: Queryable, unitId: string, ruleId: string) =>
    (
      await q.query<ThresholdValues>(
        `SELECT warn, critical, clear, enabled FROM alert_rule_overrides WHERE unit_id = $1 AND rule_id = $2 FOR UPDATE`,
        [unitId, ruleId],
      )
    ).rows[0],

  async upsert(
    q: Queryable,
    o: { unitId: string; ruleId: string; unitKind: string; by: string } & ThresholdValues,
  ): Promise<void> {
    await q.query(
      `INSERT INTO alert_rule_overrides (unit_id, rule_id, unit_kind, warn, critical, clear, enabled, updated_by_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (unit_id, rule_id) DO UPDATE SET warn = excluded.warn, critical = excluded.critical, clear = excluded.clear,
         enabled = excluded.enabled, updated_by_id = excluded.updated_by_id, updated_at = now()`,
      [o.unitId, o.ruleId, o.unitKind, o.warn, o.critical, o.clear, o.enabled, o.by],
    );
  },

  /** Removes the override; false when there was none. */
  async remove(q: Queryable, unitId: string, ruleId: string): Promise<boolean> {
    const r = await q.query(
      `DELETE FROM alert_rule_overrides WHERE unit_id = $1 AND rule_id = $2 RETURNING unit_id`,
      [unitId, ruleId],
    );
    return r.rows.length > 0;
  },
};
