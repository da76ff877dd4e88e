import { can } from '../auth/permissions.ts';
import type { Principal } from '../auth/principal.ts';
import { metricsForKind } from '../devices/metrics.ts';
import { healthOf, type Health } from './alert-rules.ts';
import type { DashboardQueries, FleetRow, OpenAlert, UnitSummary } from './dashboard-repo.ts';
import { badge, formatTime, formatValue, h, metricLabel, timeAgo, valueWithUnit } from './html.ts';

/** Page bodies (inside layout()). Pure: data in, HTML out, so they are cheap to test. */

type Rules = Parameters<typeof healthOf>[0];

/** What a kitchen manager checks first, in this order. */
export const digesterMetrics = ['temperature_c', 'ph', 'biogas_pressure_kpa', 'methane_pct', 'gas_flow_lpm', 'slurry_level_pct', 'h2s_ppm'] as const;

function tile(unitId: string, metric: string, latest: UnitSummary['latest'][string] | undefined, rules: Rules, button = false): string {
  const { name, unit } = metricLabel(metric);
  const health = healthOf(rules, metric, latest?.value);
  const tag = button ? 'button type="button"' : 'div';
  return `<${tag} class="tile ${health}" data-unit="${h(unitId)}" data-metric="${h(metric)}"><span class="label">${h(name)}</span><span class="value">${h(formatValue(metric, latest?.value))}</span><span class="unit">${h(unit)}</span></${button ? 'button' : 'div'}>`;
}

function worst(unit: UnitSummary): Health {
  if (unit.alerts.some((a) => a.severity === 'critical')) return 'critical';
  return unit.alerts.length > 0 ? 'warning' : 'healthy';
}

function lastUpdate(unit: UnitSummary): string | undefined {
  return Object.values(unit.latest).reduce<string | undefined>((a, l) => (!a || new Date(l.ts) > new Date(a) ? l.ts : a), undefined);
}

export function digesterList(units: UnitSummary[], rules: Rules): string {
  if (units.length === 0) return '<p class="empty">No digesters to show. A kitchen manager sees the digesters an administrator has assigned to them.</p>';
  return `<section class="cards">${units
    .map(
      (u) => `<article class="card ${worst(u)}" data-unit="${h(u.id)}"><h2><a href="/digesters/${h(u.id)}">${h(u.name)}</a> <small>${h(u.site)}</small></h2>
<div class="tiles">${digesterMetrics.map((m) => tile(u.id, m, u.latest[m], rules)).join('')}</div>
<p class="meta">${u.alerts.length > 0 ? badge(worst(u), `${u.alerts.length} open alert${u.alerts.length > 1 ? 's' : ''}`) : badge('healthy', 'no alerts')} · updated <span data-updated="${h(u.id)}">${timeAgo(lastUpdate(u))}</span></p></article>`,
    )
    .join('')}</section>`;
}

export function alertList(alerts: OpenAlert[], principal: Principal, opts: { showUnit?: boolean } = {}): string {
  if (alerts.length === 0) return '<p class="empty" data-alerts-empty>No alerts.</p>';
  const ack = can(principal.role, 'alerts:ack');
  return `<ul class="alerts">${alerts
    .map((a) => {
      const value = a.metric ? valueWithUnit(a.metric, a.openValue) : a.openValue != null ? String(a.openValue) : '';
      const acked = a.acknowledgedAt
        ? `<p class="ack">Acknowledged by ${h(a.acknowledgedBy ?? '')} ${timeAgo(a.acknowledgedAt)}${a.ackNote ? `: “${h(a.ackNote)}”` : ''}</p>`
        : ack && a.status === 'open'
          ? `<form class="ack-form" data-alert="${a.id}"><label>Note <input name="note" maxlength="500" required placeholder="What was done?"></label><button type="submit">Acknowledge</button></form>`
          : '';
      return `<li class="alert ${a.status === 'open' ? a.severity : 'closed'}" data-alert-id="${a.id}"><strong>${h(a.title)}</strong> ${badge(a.status === 'open' ? a.severity : 'unknown', a.status === 'open' ? a.severity : 'closed')}
<p>${opts.showUnit ? `${h(a.unitName)} (${h(a.site)}) · ` : ''}device ${h(a.deviceId)} · ${h(value)} · opened ${timeAgo(a.openedAt)}${a.closedAt ? ` · closed ${timeAgo(a.closedAt)}` : ''}</p>${acked}</li>`;
    })
    .join('')}</ul>`;
}

export function digesterDetail(u: UnitSummary, rules: Rules, gas: { day: string; m3: number }[], principal: Principal): string {
  const maxGas = Math.max(0.001, ...gas.map((g) => g.m3));
  const devices = u.devices.map((d) => `<li>${h(d.id)} ${badge(d.online ? 'online' : 'offline', d.online ? 'online' : 'offline')} · seen ${timeAgo(d.lastSeenAt)}</li>`).join('');
  return `<p class="sub">${h(u.site)} · updated <span data-updated="${h(u.id)}">${timeAgo(lastUpdate(u))}</span></p>
<section class="tiles big" aria-label="Current state">${digesterMetrics.map((m) => tile(u.id, m, u.latest[m], rules, true)).join('')}</section>
<section class="chart-panel"><div class="ranges" role="group" aria-label="Range">${['24h', '7d', '30d', '1y'].map((r) => `<button type="button" data-range="${r}"${r === '24h' ? ' aria-pressed="true"' : ''}>${r}</button>`).join('')}</div>
<h2 id="chart-title">Temperature</h2><div id="chart" data-unit="${h(u.id)}"></div><p class="muted" id="chart-note">Hourly average with min–max band (daily for 1 y), from the rollups.</p></section>
<section><h2>Gas production</h2><table class="gas"><tbody>${gas
    .map((g) => `<tr><th scope="row">${h(g.day)}</th><td><meter min="0" max="${maxGas}" value="${g.m3}">${g.m3}</meter></td><td>${g.m3.toFixed(2)} m³</td></tr>`)
    .join('')}</tbody></table></section>
<section><h2>Open alerts</h2><div id="alerts" data-unit="${h(u.id)}">${alertList(u.alerts, principal)}</div></section>
<section><h2>Sensors</h2><ul class="devices">${devices || '<li class="muted">none</li>'}</ul></section>`;
}

export function collectionList(units: UnitSummary[], needsAt: number): string {
  if (units.length === 0) return '<p class="empty">No collection points to show. A collector sees the collection points an administrator has assigned to them.</p>';
  const sorted = [...units].sort((a, b) => (b.latest.fill_level_pct?.value ?? -1) - (a.latest.fill_level_pct?.value ?? -1));
  const due = sorted.filter((u) => (u.latest.fill_level_pct?.value ?? 0) >= needsAt).length;
  return `<p class="sub">${due > 0 ? badge('warning', `${due} need${due === 1 ? 's' : ''} collection`) : badge('healthy', 'nothing to collect')} (at ${needsAt} % full)</p>
<section class="cards">${sorted
    .map((u) => {
      const fill = u.latest.fill_level_pct?.value;
      const needs = fill != null && fill >= needsAt;
      return `<article class="card ${needs ? 'warning' : 'healthy'}" data-unit="${h(u.id)}"><h2>${h(u.name)} <small>${h(u.site)}</small></h2>
<p><meter min="0" max="100" low="${Math.min(needsAt, 60)}" high="${needsAt}" optimum="0" value="${fill ?? 0}" data-unit="${h(u.id)}" data-metric="fill_level_pct"></meter></p>
<div class="tiles">${['fill_level_pct', 'weight_kg', 'lid_open', 'temperature_c'].map((m) => tile(u.id, m, u.latest[m], [])).join('')}</div>
<p class="meta">${needs ? badge('warning', 'needs collection') : badge('healthy', 'ok')} · updated <span data-updated="${h(u.id)}">${timeAgo(lastUpdate(u))}</span></p></article>`;
    })
    .join('')}</section>`;
}

function certCell(expires: string | null, now: number): string {
  if (!expires) return badge('unknown', 'none');
  const days = Math.floor((new Date(expires).getTime() - now) / 86_400_000);
  const health: Health = days < 7 ? 'critical' : days < 30 ? 'warning' : 'healthy';
  return badge(health, days < 0 ? 'expired' : `${days} d`);
}

export function fleetTable(rows: FleetRow[], rules: Rules, filter: { kind?: string; site?: string; state?: string; q?: string }, sites: string[], now = Date.now()): string {
  const online = rows.filter((r) => r.online).length;
  const option = (value: string, label: string, current?: string) => `<option value="${h(value)}"${value === (current ?? '') ? ' selected' : ''}>${h(label)}</option>`;
  const form = `<form class="filters" method="get" action="/fleet">
<label>Kind <select name="kind">${option('', 'all', filter.kind)}${option('biodigester', 'biodigester', filter.kind)}${option('collection_point', 'collection point', filter.kind)}</select></label>
<label>Site <select name="site">${option('', 'all', filter.site)}${sites.map((s) => option(s, s, filter.site)).join('')}</select></label>
<label>State <select name="state">${option('', 'all', filter.state)}${option('online', 'online', filter.state)}${option('offline', 'offline', filter.state)}${option('attention', 'needs attention', filter.state)}</select></label>
<label>Search <input name="q" value="${h(filter.q ?? '')}" placeholder="device or unit"></label><button type="submit">Filter</button></form>`;
  const body = rows
    .map((r) => {
      const battery = healthOf(rules.filter((x) => x.metric === 'battery_v'), 'battery_v', r.battery);
      return `<tr data-device="${h(r.id)}"><td><a href="/fleet/${h(r.id)}">${h(r.id)}</a><br><small>${h(r.site)} · ${h(r.unit)}</small></td>
<td data-online>${badge(r.online ? 'online' : 'offline', r.online ? 'online' : 'offline')}</td><td data-seen>${timeAgo(r.lastSeenAt, now)}</td>
<td data-metric="battery_v" class="${battery}">${h(valueWithUnit('battery_v', r.battery))}</td><td data-metric="rssi_dbm">${h(valueWithUnit('rssi_dbm', r.rssi))}</td>
<td>${h(r.firmware ?? '—')}</td><td>${certCell(r.certExpires, now)}</td><td>${r.quarantined > 0 ? badge('warning', String(r.quarantined)) : '0'}</td><td>${r.openAlerts > 0 ? badge('warning', String(r.openAlerts)) : '0'}</td></tr>`;
    })
    .join('');
  return `${form}<p class="sub"><span data-count-online>${online}</span> online · <span data-count-offline>${rows.length - online}</span> offline · ${rows.length} devices</p>
<div class="table-wrap"><table class="fleet"><thead><tr><th>Device</th><th>State</th><th>Last seen</th><th>Battery</th><th>Signal</th><th>Firmware</th><th>Certificate</th><th>Quarantine</th><th>Alerts</th></tr></thead>
<tbody>${body || '<tr><td colspan="9" class="empty">No devices match.</td></tr>'}</tbody></table></div>`;
}

export function deviceDetail(d: NonNullable<Awaited<ReturnType<DashboardQueries['device']>>>, alerts: OpenAlert[], principal: Principal, rules: Rules, now = Date.now()): string {
  const certs = d.certificates
    .map((c) => `<tr><td><code>${h(c.serial)}</code></td><td>${badge(c.status === 'active' ? 'healthy' : 'unknown', c.status)}</td><td>${h(formatTime(c.issuedAt))}</td><td>${h(formatTime(c.notAfter))}</td><td>${c.status === 'active' ? certCell(c.notAfter, now) : h(formatTime(c.revokedAt))}</td><td>${h(c.issuedBy)}</td></tr>`)
    .join('');
  const quarantined = d.quarantine
    .map((q) => `<tr><td>${q.id}</td><td>${h(formatTime(q.receivedAt))}</td><td>${h(q.status)}</td><td>${q.reasons.map((r) => `<code>${h(r.code)}</code> ${h(r.field)}: ${h(r.message)}`).join('<br>')}</td></tr>`)
    .join('');
  const refusals = d.securityEvents
    .map((e) => `<tr data-security="${h(e.action)}"><td>${h(formatTime(e.at))}</td><td>${h(e.action.replace(/^security\./, '').replace(/_/g, ' '))}</td><td><code>${h(e.reason ?? '')}</code></td><td>${e.count ?? 1}</td><td><code>${h(e.certSerial ?? '')}</code></td><td><code>${h(e.target ?? '')}</code></td></tr>`)
    .join('');
  return `<p class="sub">${h(d.site)} · ${h(d.unit)} · ${h(d.kind.replace('_', ' '))} · status ${h(d.status)}</p>
<section class="tiles">${badge(d.online ? 'online' : 'offline', d.online ? 'online' : 'offline')} <span>last seen ${timeAgo(d.lastSeenAt, now)}</span> · firmware ${h(d.firmware ?? '—')} · battery <span class="${healthOf(rules, 'battery_v', d.battery)}">${h(valueWithUnit('battery_v', d.battery))}</span> · signal ${h(valueWithUnit('rssi_dbm', d.rssi))}</section>
<section><h2>Alerts</h2>${alertList(alerts, principal)}</section>
<section><h2>Certificates</h2><div class="table-wrap"><table><thead><tr><th>Serial</th><th>Status</th><th>Issued</th><th>Expires</th><th>Left / revoked</th><th>Issued by</th></tr></thead><tbody>${certs || '<tr><td colspan="6" class="empty">none</td></tr>'}</tbody></table></div></section>
<section><h2>Security events (7 days)</h2><div class="table-wrap"><table><thead><tr><th>Recorded</th><th>What</th><th>Reason</th><th>Count</th><th>Certificate</th><th>Sample</th></tr></thead><tbody>${refusals || '<tr><td colspan="6" class="empty">none</td></tr>'}</tbody></table></div></section>
<section><h2>Recent quarantine</h2><div class="table-wrap"><table><thead><tr><th>#</th><th>Received</th><th>Status</th><th>Why</th></tr></thead><tbody>${quarantined || '<tr><td colspan="4" class="empty">nothing quarantined</td></tr>'}</tbody></table></div></section>
<p class="muted">Metrics this kind reports: ${metricsForKind(d.kind).map((m) => h(m)).join(', ')}.</p>`;
}
