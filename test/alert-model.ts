import fc from 'fast-check';

/**
 * An independent model of alert rules for property tests (dashboards/alert-override-*.test.ts):
 * written from what the thresholds mean (docs/operations.md "Alert rules"), not from
 * dashboards/alert-rules.ts, so the two can disagree when the code is wrong.
 */

export const conditions = ['above', 'below', 'offline_minutes', 'cert_expiry_days'] as const;
export type ModelCondition = (typeof conditions)[number];

/** Which way is bad, said once per condition. */
export const badWhenHigh: Record<ModelCondition, boolean> = {
  above: true,
  offline_minutes: true,
  below: false,
  cert_expiry_days: false,
};

export interface ModelThresholds {
  warn: number;
  critical: number | null;
  clear: number;
  enabled: boolean;
}

/** Valid thresholds for a condition, built by construction (sorted the healthy way round). */
export const validThresholds = (condition: ModelCondition, value: fc.Arbitrary<number>) =>
  fc
    .tuple(value, value, value, fc.boolean(), fc.boolean())
    .map(([a, b, c, withCritical, enabled]): ModelThresholds => {
      const [lo, mid, hi] = [a, b, c].sort((x, y) => x - y) as [number, number, number];
      return badWhenHigh[condition]
        ? { warn: mid, critical: withCritical ? hi : null, clear: lo, enabled }
        : { warn: mid, critical: withCritical ? lo : null, clear: hi, enabled };
    });

export type ModelSeverity = 'warning' | 'critical';

/**
 * One alert's life over a run of values: none → warning or critical when a value is worse than
 * warn (critical); warning → critical; closed only when a value is back at or past clear.
 * A switched-off rule opens nothing. Returns how many alerts opened and the state at the end.
 */
export function modelAlert(
  condition: ModelCondition,
  t: ModelThresholds,
  values: readonly number[],
): { opened: number; state: ModelSeverity | null } {
  const high = badWhenHigh[condition];
  let state: ModelSeverity | null = null;
  let opened = 0;
  if (!t.enabled) return { opened, state };
  for (const v of values) {
    const worse = (x: number) => (high ? v > x : v < x);
    const crit = t.critical != null && worse(t.critical);
    if (state === null) {
      if (crit) state = 'critical';
      else if (worse(t.warn)) state = 'warning';
      if (state) opened++;
    } else if (high ? v <= t.clear : v >= t.clear) state = null;
    else if (crit) state = 'critical';
  }
  return { opened, state };
}
