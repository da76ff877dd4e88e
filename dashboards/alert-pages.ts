import { can } from '../auth/permissions.ts';
import type { Principal } from '../auth/principal.ts';
import type { OpenAlert } from './dashboard-repo.ts';
import type { Formatter } from './format-fns.ts';
import { badge, h, timeAgo, valueWithUnit } from './html.ts';

/**
 * Alerts as a list people can act on: where (a link to the digester or collection point and to
 * the device), the value with its unit, what to do (guidance for every rule), repeats of the same
 * rule on the same device grouped, and acknowledging with a note.
 */

/** What to do, per rule (`<kind>.<metric>.<high|low>` or `<kind>.device.<check>`), kind left out. */
const guidanceByRule: Record<string, string> = {
  'temperature_c.low':
    'Check the heater or insulation and cover the digester at night; feed less until it warms up.',
  'temperature_c.high':
    'Shade the digester and check the heater is off; do not add hot water or hot food waste.',
  'ph.low':
    'The digester is acidifying: stop feeding for a few days, then feed less; add lime or wood ash only if advised.',
  'ph.high': 'Feed more fresh food waste and less ash or lime; check the pH again tomorrow.',
  'biogas_pressure_kpa.high':
    'Use or flare gas now and check the gas line and valves for a blockage; keep flames away from leaks.',
  'methane_pct.low':
    'Check for air leaks at the inlet and gas holder and feed evenly; poor gas burns badly.',
  'h2s_ppm.high':
    'Ventilate the kitchen and replace or regenerate the H₂S filter; H₂S is toxic and corrodes burners.',
  'fill_level_pct.high': 'Empty the bin on the next round; collect it today if it is nearly full.',
  'battery_v.low': 'Replace or charge the sensor battery at the next visit.',
  'device.offline': 'Check the sensor has power and signal; restart it if it stays offline.',
  'device.cert_expiry':
    'Renew the sensor’s certificate before it expires (technician: rotate it on the device page or with the CLI).',
};

export function guidanceFor(ruleId: string): string {
  const key = ruleId.split('.').slice(1).join('.');
  return (
    guidanceByRule[key] ??
    'Check the device and its readings; acknowledge with a note of what was done.'
  );
}

/** Guidance for every rule id (the client script shows it on alerts added live). */
export function guidanceMap(ruleIds: readonly string[]): Record<string, string> {
  return Object.fromEntries(ruleIds.map((id) => [id, guidanceFor(id)]));
}

/** The value an alert opened on, with its unit: a metric's own unit, minutes offline, days left. */
export function alertValue(a: Pick<OpenAlert, 'ruleId' | 'metric' | 'openValue'>): string {
  if (a.openValue == null) return '';
  if (a.metric) return valueWithUnit(a.metric, a.openValue);
  if (a.ruleId.endsWith('.device.offline')) return `${Math.round(a.openValue)} min offline`;
  if (a.ruleId.endsWith('.device.cert_expiry')) return `${Math.round(a.openValue)} days left`;
  return String(a.openValue);
}

/** The same rule on the same device with the same status: one entry, with how many times. */
export function groupAlerts(alerts: readonly OpenAlert[]): { alert: OpenAlert; times: number }[] {
  const groups = new Map<string, { alert: OpenAlert; times: number }>();
  for (const a of alerts) {
    // An open alert stays on its own (it is acknowledged by itself); closed repeats fold together.
    const key = a.status === 'open' ? `open:${a.id}` : `closed:${a.ruleId}:${a.deviceId}`;
    const g = groups.get(key);
    if (g) g.times++;
    else groups.set(key, { alert: a, times: 1 });
  }
  return [...groups.values()];
}

function where(a: OpenAlert, principal: Principal): string {
  const kind = a.ruleId.split('.')[0];
  const unit = `${h(a.unitName)} (${h(a.site)})`;
  const unitLink =
    kind === 'biodigester' && can(principal.role, 'dashboard:digesters')
      ? `<a href="/digesters/${h(a.unitId)}">${unit}</a>`
      : kind === 'collection_point' && can(principal.role, 'dashboard:collection')
        ? `<a href="/collection#unit-${h(a.unitId)}">${unit}</a>`
        : unit;
  const device = can(principal.role, 'dashboard:fleet')
    ? `<a href="/fleet/${h(a.deviceId)}">${h(a.deviceId)}</a>`
    : h(a.deviceId);
  return `${unitLink} · sensor ${device}`;
}

export function alertList(
  alerts: OpenAlert[],
  principal: Principal,
  f: Formatter,
  opts: { showUnit?: boolean } = {},
): string {
  if (alerts.length === 0) return '<p class="empty" data-alerts-empty>No alerts.</p>';
  const ack = can(principal.role, 'alerts:ack');
  return `<ul class="alerts">${groupAlerts(alerts)
    .map(({ alert: a, times }) => {
      const acked = a.acknowledgedAt
        ? `<p class="ack">Acknowledged by ${h(a.acknowledgedBy ?? '')} ${timeAgo(f, a.acknowledgedAt)}${a.ackNote ? `: “${h(a.ackNote)}”` : ''}</p>`
        : ack && a.status === 'open'
          ? `<form class="ack-form" data-alert="${a.id}"><label>Note <input name="note" maxlength="500" required placeholder="What was done?"></label><button type="submit">Acknowledge</button></form>`
          : '';
      const value = alertValue(a);
      const repeat = times > 1 ? ` · ${times} times, last` : '';
      return `<li class="alert ${a.status === 'open' ? a.severity : 'closed'}" data-alert-id="${a.id}" data-rule="${h(a.ruleId)}"><strong>${h(a.title)}</strong> ${badge(a.status === 'open' ? a.severity : 'unknown', a.status === 'open' ? a.severity : 'closed')}
<p>${opts.showUnit ? `${where(a, principal)} · ` : can(principal.role, 'dashboard:fleet') ? `sensor <a href="/fleet/${h(a.deviceId)}">${h(a.deviceId)}</a> · ` : `sensor ${h(a.deviceId)} · `}${value ? `${h(value)} · ` : ''}${repeat} opened ${timeAgo(f, a.openedAt)}${a.closedAt ? ` · closed ${timeAgo(f, a.closedAt)}` : ''}</p>
<p class="guidance">${h(guidanceFor(a.ruleId))}</p>${acked}</li>`;
    })
    .join('')}</ul>`;
}
