import type { DeviceKind, MetricName } from '../devices/metrics.ts';

/**
 * Alert rules and the state machine behind them, as pure functions. The defaults are written to
 * `alert_rules` at start (an operator's later change is kept); the same thresholds colour the
 * dashboards, so a value shown amber is one that has an alert open or about to.
 */

export type Condition = 'above' | 'below' | 'offline_minutes' | 'cert_expiry_days';
export type Severity = 'warning' | 'critical';

export interface RuleSpec {
  id: string;
  unitKind: DeviceKind;
  metric: MetricName | null;
  condition: Condition;
  /** Opens a warning when crossed (above: value > warn; below: value < warn). */
  warn: number;
  /** Raises the open alert to critical when crossed. */
  critical: number | null;
  /** Closes the alert only once the value is back past this (the hysteresis band). */
  clear: number;
  title: string;
  enabled?: boolean;
}

const metric = (
  unitKind: DeviceKind,
  m: MetricName,
  condition: 'above' | 'below',
  warn: number,
  critical: number | null,
  clear: number,
  title: string,
): RuleSpec => ({
  id: `${unitKind}.${m}.${condition === 'above' ? 'high' : 'low'}`,
  unitKind,
  metric: m,
  condition,
  warn,
  critical,
  clear,
  title,
});

const deviceRules = (unitKind: DeviceKind): RuleSpec[] => [
  metric(unitKind, 'battery_v', 'below', 3.5, 3.3, 3.6, 'Sensor battery low'),
  {
    id: `${unitKind}.device.offline`,
    unitKind,
    metric: null,
    condition: 'offline_minutes',
    warn: 15,
    critical: 120,
    clear: 15,
    title: 'Sensor offline',
  },
  {
    id: `${unitKind}.device.cert_expiry`,
    unitKind,
    metric: null,
    condition: 'cert_expiry_days',
    warn: 30,
    critical: 7,
    clear: 30,
    title: 'Sensor certificate expiring',
  },
];

/**
 * Defaults for mesophilic household/institutional digesters (operating band 30–40 °C, pH 6.8–7.6,
 * methane above 55 %); docs/operations.md explains each and how to change it.
 */
export const defaultRules: readonly RuleSpec[] = [
  metric(
    'biodigester',
    'temperature_c',
    'below',
    30,
    25,
    31,
    'Digester too cold (mesophilic band)',
  ),
  metric(
    'biodigester',
    'temperature_c',
    'above',
    40,
    45,
    39,
    'Digester too warm (mesophilic band)',
  ),
  metric('biodigester', 'ph', 'below', 6.8, 6.5, 6.9, 'pH low: acidifying (overfed?)'),
  metric('biodigester', 'ph', 'above', 7.8, 8.2, 7.7, 'pH high'),
  metric('biodigester', 'biogas_pressure_kpa', 'above', 8, 10, 7.5, 'Gas pressure high'),
  metric('biodigester', 'methane_pct', 'below', 55, 45, 57, 'Methane share low'),
  metric('biodigester', 'h2s_ppm', 'above', 1000, 2000, 900, 'H₂S high (corrosive, toxic)'),
  ...deviceRules('biodigester'),
  metric(
    'collection_point',
    'fill_level_pct',
    'above',
    80,
    95,
    60,
    'Collection point needs collection',
  ),
  ...deviceRules('collection_point'),
];

/** A rule's thresholds as stored (condition read back from the database as text). */
export interface Thresholds {
  condition: Condition | (string & {});
  warn: number;
  critical: number | null;
  clear: number;
}

export const lowIsBad = (condition: string): boolean =>
  condition === 'below' || condition === 'cert_expiry_days';

/** How far past its thresholds a value is: what opens, escalates or keeps an alert. */
export function severityOf(rule: Omit<Thresholds, 'clear'>, value: number): Severity | null {
  const past = (threshold: number): boolean =>
    lowIsBad(rule.condition) ? value < threshold : value > threshold;
  if (rule.critical != null && past(rule.critical)) return 'critical';
  return past(rule.warn) ? 'warning' : null;
}

/** Back inside the healthy side of the clear threshold (inclusive). */
export function isClear(rule: Pick<Thresholds, 'condition' | 'clear'>, value: number): boolean {
  return lowIsBad(rule.condition) ? value >= rule.clear : value <= rule.clear;
}

export type Transition =
  | { kind: 'open'; severity: Severity }
  | { kind: 'escalate'; severity: 'critical' }
  | { kind: 'close' }
  | { kind: 'none' };

/**
 * The hysteresis state machine for one rule and device: opens when the value crosses `warn`,
 * escalates once to critical, and closes only at `clear`. Between `warn` and `clear` nothing
 * changes, whichever state it is in, so a value hovering at a threshold cannot flap.
 */
export function transition(
  rule: Thresholds,
  open: { severity: Severity } | undefined,
  value: number,
): Transition {
  if (!open) {
    const severity = severityOf(rule, value);
    return severity ? { kind: 'open', severity } : { kind: 'none' };
  }
  if (isClear(rule, value)) return { kind: 'close' };
  if (open.severity === 'warning' && severityOf(rule, value) === 'critical')
    return { kind: 'escalate', severity: 'critical' };
  return { kind: 'none' };
}

export type Health = 'healthy' | 'warning' | 'critical' | 'unknown';

/** The colour of a value on a dashboard: the worst severity any enabled rule gives it. */
export function healthOf(
  rules: readonly (Omit<Thresholds, 'clear'> & { metric: string | null; enabled?: boolean })[],
  m: string,
  value: number | null | undefined,
): Health {
  if (value == null) return 'unknown';
  let worst: Health = 'healthy';
  for (const r of rules) {
    if (r.metric !== m || r.enabled === false) continue;
    const s = severityOf(r, value);
    if (s === 'critical') return 'critical';
    if (s === 'warning') worst = 'warning';
  }
  return worst;
}
