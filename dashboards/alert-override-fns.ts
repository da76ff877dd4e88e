import { lowIsBad, type Thresholds } from './alert-rules.ts';

/**
 * Per-unit thresholds as pure functions: which thresholds are acceptable (one validator for the
 * kind's rule and a unit's override, so the two can never disagree), and the effective rule of a
 * unit (its override, when it has one, merged over the kind's rule). Everything that reads
 * thresholds (the evaluator, tile colours, chart lines, the "needs collection" level, the stale
 * age) asks `rulesForUnit`, so a unit is judged and shown by the same numbers.
 */

export interface ThresholdValues {
  warn: number;
  critical: number | null;
  clear: number;
  enabled: boolean;
}

/** Why thresholds are refused: a catalogue key (`rules.invalid.<code>`) and its English text. */
export interface ThresholdProblem {
  code: 'notFinite' | 'clearSide' | 'criticalSide';
  /** `≥`/`≤`: the side the refused value must be on. */
  side: '≥' | '≤';
  condition: string;
  message: string;
}

/**
 * The thresholds of a rule with this condition are coherent: all finite; clear on the healthy
 * side of warn (or equal: no band), since an alert closes only past clear and a clear beyond
 * warn would close an alert the same value keeps open (flapping); critical, when set, beyond
 * warn (else every warning would be critical at once).
 */
export function thresholdProblem(
  condition: string,
  b: Omit<ThresholdValues, 'enabled'>,
): ThresholdProblem | null {
  const low = lowIsBad(condition);
  if (![b.warn, b.clear, b.critical ?? 0].every(Number.isFinite))
    return {
      code: 'notFinite',
      side: '≥',
      condition,
      message: 'warn, critical and clear must be finite numbers',
    };
  if (low ? b.clear < b.warn : b.clear > b.warn) {
    const side = low ? '≥' : '≤';
    return {
      code: 'clearSide',
      side,
      condition,
      message: `clear must be ${side} warn for a "${condition}" rule (it is the hysteresis band)`,
    };
  }
  if (b.critical != null && (low ? b.critical > b.warn : b.critical < b.warn)) {
    const side = low ? '≤' : '≥';
    return {
      code: 'criticalSide',
      side,
      condition,
      message: `critical must be ${side} warn for a "${condition}" rule`,
    };
  }
  return null;
}

/** A unit's own thresholds for one rule, as stored in `alert_rule_overrides`. */
export interface RuleOverride extends ThresholdValues {
  unitId: string;
  ruleId: string;
  updatedById?: string;
  updatedAt?: Date | string;
}

/** Anything with a rule's identity and thresholds (a repo row, a page row, a spec). */
export interface RuleLike extends Thresholds {
  id: string;
  unitKind: string;
  metric: string | null;
  enabled?: boolean;
}

export type Effective<R extends RuleLike> = R & {
  enabled: boolean;
  /** The unit has its own thresholds for this rule. */
  overridden: boolean;
};

/** The rule as it applies to a unit that has this override (or none). */
export function effectiveRule<R extends RuleLike>(
  rule: R,
  override: ThresholdValues | undefined,
): Effective<R> {
  if (!override) return { ...rule, enabled: rule.enabled !== false, overridden: false };
  return {
    ...rule,
    warn: override.warn,
    critical: override.critical,
    clear: override.clear,
    enabled: override.enabled,
    overridden: true,
  };
}

/** Overrides indexed by unit and rule, for many lookups. */
export type OverrideIndex = ReadonlyMap<string, ReadonlyMap<string, ThresholdValues>>;

export function indexOverrides(overrides: readonly RuleOverride[]): OverrideIndex {
  const byUnit = new Map<string, Map<string, ThresholdValues>>();
  for (const o of overrides) {
    let m = byUnit.get(o.unitId);
    if (!m) byUnit.set(o.unitId, (m = new Map<string, ThresholdValues>()));
    m.set(o.ruleId, o);
  }
  return byUnit;
}

/**
 * The effective rules of one unit of `kind`: each of the kind's rules with the unit's override
 * merged over it. Other units' overrides never apply.
 */
export function rulesForUnit<R extends RuleLike>(
  rules: readonly R[],
  overrides: OverrideIndex,
  unitId: string,
  kind: string,
): Effective<R>[] {
  const own = overrides.get(unitId);
  return rules.filter((r) => r.unitKind === kind).map((r) => effectiveRule(r, own?.get(r.id)));
}

/**
 * The effective rules of any unit, computed once per unit: what a page that shows many units
 * (the digester cards, the collection list, the fleet table) colours each one by.
 */
export function rulesResolver<R extends RuleLike>(
  rules: readonly R[],
  overrides: readonly RuleOverride[],
): ((unitId: string, kind: string) => Effective<R>[]) & {
  /** Effective rules of those of `units` that have an override (the page script's `unitRules`). */
  overridden(units: readonly { id: string; kind: string }[]): Record<string, Effective<R>[]>;
} {
  const index = indexOverrides(overrides);
  const memo = new Map<string, Effective<R>[]>();
  const of = (unitId: string, kind: string): Effective<R>[] => {
    const key = `${unitId}|${kind}`;
    let r = memo.get(key);
    if (!r) memo.set(key, (r = rulesForUnit(rules, index, unitId, kind)));
    return r;
  };
  return Object.assign(of, {
    overridden: (units: readonly { id: string; kind: string }[]) =>
      Object.fromEntries(units.filter((u) => index.has(u.id)).map((u) => [u.id, of(u.id, u.kind)])),
  });
}
