import { metricsForKind } from '../devices/metrics.ts';
import { translateOr, type MessageKey } from '../i18n/index.ts';
import { alertList } from './alert-pages.ts';
import { healthOf, type Health } from './alert-rules.ts';
import type { DashboardQueries, FleetRow } from './dashboard-repo.ts';
import type { Formatter } from './format-fns.ts';
import type { Principal } from '../auth/principal.ts';
import { badge, h, metricLabel, tHtml, timeAgo, valueWithUnit } from './html.ts';

/** The technician's page bodies: fleet health and one device (inside layout()). Pure. */

export type Rules = readonly (Parameters<typeof healthOf>[0][number] & { unitKind?: string })[];
/** The effective rules of a unit (alert-override-fns.ts rulesResolver): its overrides merged. */
export type RulesOf = (unitId: string, kind: string) => Rules;

/** One rule list for every unit (a test, a page without overrides) or each unit's own. */
export function resolveRules(rules: Rules | RulesOf): RulesOf {
  if (typeof rules === 'function') return rules;
  return (_unitId, kind) => rules.filter((r) => r.unitKind === undefined || r.unitKind === kind);
}

/** Online or offline, in words and colour. */
export function onlineBadge(online: boolean, f: Formatter): string {
  return badge(online ? 'online' : 'offline', f.t(online ? 'state.online' : 'state.offline'));
}

/** An active certificate's days left; a device whose certificates are all revoked reads "revoked". */
function certCell(
  row: Pick<FleetRow, 'certExpires' | 'certStatus'>,
  f: Formatter,
  now: number,
): string {
  if (!row.certExpires)
    return row.certStatus === 'revoked'
      ? badge('critical', f.t('cert.revoked'))
      : row.certStatus
        ? badge('unknown', translateOr(f.t, `cert.${row.certStatus}`, row.certStatus))
        : badge('unknown', f.t('common.none'));
  const days = Math.floor((new Date(row.certExpires).getTime() - now) / 86_400_000);
  const health: Health = days < 7 ? 'critical' : days < 30 ? 'warning' : 'healthy';
  return `${badge(health, days < 0 ? f.t('cert.expired') : f.t('cert.daysLeft', { days }))} <small>${h(f.dateTime(row.certExpires))}</small>`;
}

const batteryText = (health: Health, f: Formatter) =>
  health === 'critical'
    ? ` (${f.t('battery.veryLow')})`
    : health === 'warning'
      ? ` (${f.t('battery.low')})`
      : '';

const fleetColumns: MessageKey[] = [
  'col.device',
  'col.state',
  'col.lastSeen',
  'col.battery',
  'col.signal',
  'col.firmware',
  'col.certificate',
  'col.quarantine',
  'col.alerts',
];

export function fleetTable(
  rows: FleetRow[],
  rules: Rules | RulesOf,
  filter: { kind?: string; site?: string; state?: string; q?: string },
  sites: string[],
  f: Formatter,
  now = Date.now(),
): string {
  const online = rows.filter((r) => r.online).length;
  const option = (value: string, label: string, current?: string) =>
    `<option value="${h(value)}"${value === (current ?? '') ? ' selected' : ''}>${h(label)}</option>`;
  const t = f.t;
  const form = `<form class="filters" method="get" action="/fleet">
<label>${h(t('fleet.kind'))} <select name="kind">${option('', t('common.all'), filter.kind)}${option('biodigester', t('kind.biodigester'), filter.kind)}${option('collection_point', t('kind.collection_point'), filter.kind)}</select></label>
<label>${h(t('fleet.site'))} <select name="site">${option('', t('common.all'), filter.site)}${sites.map((s) => option(s, s, filter.site)).join('')}</select></label>
<label>${h(t('fleet.state'))} <select name="state">${option('', t('common.all'), filter.state)}${option('online', t('state.online'), filter.state)}${option('offline', t('state.offline'), filter.state)}${option('attention', t('fleet.attention'), filter.state)}</select></label>
<label>${h(t('fleet.search'))} <input name="q" value="${h(filter.q ?? '')}" placeholder="${h(t('fleet.searchHint'))}"></label><button type="submit">${h(t('fleet.filter'))}</button></form>`;
  const rulesOf = resolveRules(rules);
  const body = rows
    .map((r) => {
      const battery = healthOf(rulesOf(r.unitId, r.kind), 'battery_v', r.battery);
      const col = (key: MessageKey) => h(t(key));
      return `<tr data-device="${h(r.id)}" data-unit="${h(r.unitId)}"><td data-label="${col('col.device')}"><a href="/fleet/${h(r.id)}">${h(r.id)}</a><br><small>${h(r.site)} · ${h(r.unit)}</small></td>
<td data-label="${col('col.state')}" data-online>${onlineBadge(r.online, f)}</td><td data-label="${col('col.lastSeen')}" data-seen>${timeAgo(f, r.lastSeenAt, now)}</td>
<td data-label="${col('col.battery')}" data-metric="battery_v" class="${battery}">${h(valueWithUnit('battery_v', r.battery, t) + batteryText(battery, f))}</td><td data-label="${col('col.signal')}" data-metric="rssi_dbm">${h(valueWithUnit('rssi_dbm', r.rssi, t))}</td>
<td data-label="${col('col.firmware')}">${h(r.firmware ?? '—')}</td><td data-label="${col('col.certificate')}">${certCell(r, f, now)}</td><td data-label="${col('col.quarantine')}">${r.quarantined > 0 ? badge('warning', String(r.quarantined)) : '0'}</td><td data-label="${col('col.alerts')}">${r.openAlerts > 0 ? badge('warning', String(r.openAlerts)) : '0'}</td></tr>`;
    })
    .join('');
  const heads = fleetColumns.map((k) => `<th scope="col">${h(t(k))}</th>`).join('');
  return `${form}<p class="sub">${tHtml(
    f,
    'fleet.counts',
    {
      online: `<span data-count-online>${online}</span>`,
      offline: `<span data-count-offline>${rows.length - online}</span>`,
    },
    { total: rows.length },
  )}</p>
<div class="table-wrap fleet-wrap" tabindex="0" role="region" aria-label="${h(t('fleet.devices'))}"><table class="fleet"><thead><tr>${heads}</tr></thead>
<tbody>${body || `<tr><td colspan="9" class="empty">${h(t('fleet.noMatch'))}</td></tr>`}</tbody></table></div>`;
}

export function deviceDetail(
  d: NonNullable<Awaited<ReturnType<DashboardQueries['device']>>>,
  alerts: Parameters<typeof alertList>[0],
  principal: Principal,
  rules: Rules,
  f: Formatter,
  now = Date.now(),
): string {
  const t = f.t;
  const certs = d.certificates
    .map(
      (c) =>
        `<tr><td><code>${h(c.serial)}</code></td><td>${badge(c.status === 'active' ? 'healthy' : c.status === 'revoked' ? 'critical' : 'unknown', translateOr(t, `cert.${c.status}`, c.status))}</td><td>${h(f.dateTime(c.issuedAt))}</td><td>${h(f.dateTime(c.notAfter))}</td><td>${c.status === 'active' ? certCell({ certExpires: c.notAfter, certStatus: 'active' }, f, now) : h(f.dateTime(c.revokedAt))}</td><td>${h(c.issuedBy)}</td></tr>`,
    )
    .join('');
  const quarantined = d.quarantine
    .map(
      (q) =>
        `<tr><td>${q.id}</td><td>${h(f.dateTime(q.receivedAt))}</td><td>${h(translateOr(t, `quarantine.${q.status}`, q.status))}</td><td>${q.reasons.map((r) => `<code>${h(r.code)}</code> <code>${h(r.field)}</code>: <span lang="en">${h(r.message)}</span>`).join('<br>')}</td></tr>`,
    )
    .join('');
  const refusals = d.securityEvents
    .map(
      (e) =>
        `<tr data-security="${h(e.action)}"><td>${h(f.dateTime(e.at))}</td><td><code>${h(e.action.replace(/^security\./, '').replace(/_/g, ' '))}</code></td><td><code>${h(e.reason ?? '')}</code></td><td>${e.count ?? 1}</td><td><code>${h(e.certSerial ?? '')}</code></td><td><code>${h(e.target ?? '')}</code></td></tr>`,
    )
    .join('');
  const battery = healthOf(rules, 'battery_v', d.battery);
  const item = (label: MessageKey, value: string, cls = '') =>
    `<div><dt>${h(t(label))}</dt><dd${cls ? ` class="${cls}"` : ''}>${value}</dd></div>`;
  const table = (heads: (MessageKey | '#')[], rows: string, empty: MessageKey, cls = '') =>
    `<div class="table-wrap" tabindex="0" role="region" aria-label="${h(t('table.scrolls'))}"><table${cls}><thead><tr>${heads.map((k) => `<th scope="col">${k === '#' ? '#' : h(t(k))}</th>`).join('')}</tr></thead><tbody>${rows || `<tr><td colspan="${heads.length}" class="empty">${h(t(empty))}</td></tr>`}</tbody></table></div>`;
  return `<p class="sub">${h(d.site)} · ${h(d.unit)} · ${h(translateOr(t, `kind.${d.kind}`, d.kind))}</p>
<dl class="status">${item('col.state', onlineBadge(d.online, f))}${item('col.lastSeen', timeAgo(f, d.lastSeenAt, now))}${item('device.registry', h(translateOr(t, `registry.${d.status}`, d.status)))}${item('col.firmware', h(d.firmware ?? '—'))}${item('col.battery', h(valueWithUnit('battery_v', d.battery, t) + batteryText(battery, f)), battery)}${item('col.signal', h(valueWithUnit('rssi_dbm', d.rssi, t)))}${item('col.certificate', certCell(d, f, now))}</dl>
<section><h2>${h(t('col.alerts'))}</h2>${alertList(alerts, principal, f)}</section>
<section><h2>${h(t('device.certificates'))}</h2>${table(['device.serial', 'device.status', 'device.issued', 'device.expires', 'device.leftOrRevoked', 'device.issuedBy'], certs, 'common.none', ' class="certs"')}</section>
<section><h2>${h(t('device.security'))}</h2>${table(['device.recorded', 'device.what', 'device.reason', 'device.count', 'col.certificate', 'device.sample'], refusals, 'common.none')}</section>
<section><h2>${h(t('device.quarantine'))}</h2>${table(['#', 'device.received', 'device.status', 'device.why'], quarantined, 'device.nothingQuarantined')}</section>
<p class="muted">${h(
    t('device.metrics', {
      list: metricsForKind(d.kind)
        .map((m) => metricLabel(m, t).name)
        .join(', '),
    }),
  )}</p>`;
}
