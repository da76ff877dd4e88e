import type { Principal } from '../auth/principal.ts';
import { metricsForKind } from '../devices/metrics.ts';
import { alertList } from './alert-pages.ts';
import { healthOf, type Health } from './alert-rules.ts';
import type { DashboardQueries, FleetRow, UnitSummary } from './dashboard-repo.ts';
import { localStamp } from './csv-fns.ts';
import type { Formatter } from './format-fns.ts';
import { badge, formatValue, h, metricLabel, timeAgo, valueWithUnit } from './html.ts';

/** Page bodies (inside layout()). Pure: data in, HTML out, so they are cheap to test. */

type Rules = readonly (Parameters<typeof healthOf>[0][number] & { unitKind?: string })[];

/** What a kitchen manager checks first, in this order. */
export const digesterMetrics = [
  'temperature_c',
  'ph',
  'biogas_pressure_kpa',
  'methane_pct',
  'gas_flow_lpm',
  'slurry_level_pct',
  'h2s_ppm',
] as const;

/**
 * How old a value may be before it is stale: the kind's offline rule (default 15 min), which is
 * the interval within which a sensor is expected to report.
 */
export function staleAfterMs(rules: Rules, kind: string): number {
  const r = rules.find(
    (x) => x.condition === 'offline_minutes' && (x.unitKind === undefined || x.unitKind === kind),
  );
  return (r?.warn ?? 15) * 60_000;
}

interface TileCtx {
  rules: Rules;
  f: Formatter;
  now: number;
  staleMs: number;
  /** Devices that are offline: their values are not current, whatever their age. */
  offline: ReadonlySet<string>;
}

const stateText: Record<Health, string> = {
  healthy: 'ok',
  warning: 'warning',
  critical: 'critical',
  unknown: 'no data',
};

/** A value's state in text (never colour only): offline or stale wins over its thresholds. */
export function tileState(
  metric: string,
  latest: UnitSummary['latest'][string] | undefined,
  ctx: Pick<TileCtx, 'rules' | 'now' | 'staleMs' | 'offline'>,
): { cls: Health | 'stale'; text: string } {
  if (!latest) return { cls: 'unknown', text: 'no data' };
  if (ctx.offline.has(latest.deviceId)) return { cls: 'stale', text: 'sensor offline' };
  if (ctx.now - new Date(latest.ts).getTime() > ctx.staleMs) return { cls: 'stale', text: 'stale' };
  const health = healthOf(ctx.rules, metric, latest.value);
  return { cls: health, text: stateText[health] };
}

function tile(
  unitId: string,
  metric: string,
  latest: UnitSummary['latest'][string] | undefined,
  ctx: TileCtx,
  button?: { pressed: boolean },
): string {
  const { name, unit } = metricLabel(metric);
  const state = tileState(metric, latest, ctx);
  const tag = button ? `button type="button" aria-pressed="${button.pressed}"` : 'div';
  const data = latest
    ? ` data-device="${h(latest.deviceId)}" data-ts="${h(new Date(latest.ts).toISOString())}"`
    : '';
  return `<${tag} class="tile ${state.cls}" data-unit="${h(unitId)}" data-metric="${h(metric)}"${data}><span class="label">${h(name)}</span><span class="value">${h(formatValue(metric, latest?.value))}</span><span class="unit">${h(unit)}</span><span class="state">${h(state.text)}</span><span class="age">${latest ? timeAgo(ctx.f, latest.ts, ctx.now) : ''}</span></${button ? 'button' : 'div'}>`;
}

function tileCtx(unit: UnitSummary, rules: Rules, f: Formatter, now: number): TileCtx {
  return {
    rules,
    f,
    now,
    staleMs: staleAfterMs(rules, unit.kind),
    offline: new Set(unit.devices.filter((d) => !d.online).map((d) => d.id)),
  };
}

function worst(unit: UnitSummary, ctx: TileCtx): Health | 'stale' {
  if (unit.alerts.some((a) => a.severity === 'critical')) return 'critical';
  if (unit.alerts.length > 0) return 'warning';
  return ctx.offline.size > 0 ||
    Object.values(unit.latest).some((l) => ctx.now - new Date(l.ts).getTime() > ctx.staleMs)
    ? 'stale'
    : 'healthy';
}

/** The unit's state in words: open alerts, and whether its values are current. */
function unitBadge(unit: UnitSummary, ctx: TileCtx): string {
  const out: string[] = [];
  if (unit.alerts.length > 0)
    out.push(
      badge(
        unit.alerts.some((a) => a.severity === 'critical') ? 'critical' : 'warning',
        `${unit.alerts.length} open alert${unit.alerts.length > 1 ? 's' : ''}`,
      ),
    );
  if (ctx.offline.size > 0) out.push(badge('stale', 'sensor offline'));
  else if (Object.values(unit.latest).some((l) => ctx.now - new Date(l.ts).getTime() > ctx.staleMs))
    out.push(badge('stale', 'values stale'));
  return out.join(' ') || badge('healthy', 'no alerts');
}

function lastUpdate(unit: UnitSummary): string | undefined {
  return Object.values(unit.latest).reduce<string | undefined>(
    (a, l) => (!a || new Date(l.ts) > new Date(a) ? l.ts : a),
    undefined,
  );
}

export function digesterList(
  units: UnitSummary[],
  rules: Rules,
  f: Formatter,
  now = Date.now(),
): string {
  if (units.length === 0)
    return '<p class="empty">No digesters to show. A kitchen manager sees the digesters an administrator has assigned to them.</p>';
  return `<section class="cards">${units
    .map((u) => {
      const ctx = tileCtx(u, rules, f, now);
      return `<article class="card ${worst(u, ctx)}" data-unit="${h(u.id)}"><h2><a href="/digesters/${h(u.id)}">${h(u.name)}</a> <small>${h(u.site)}</small></h2>
<div class="tiles">${digesterMetrics.map((m) => tile(u.id, m, u.latest[m], ctx)).join('')}</div>
<p class="meta">${unitBadge(u, ctx)} · updated <span data-updated="${h(u.id)}">${timeAgo(f, lastUpdate(u), now)}</span></p></article>`;
    })
    .join('')}</section>`;
}

export function digesterDetail(
  u: UnitSummary,
  rules: Rules,
  gas: { day: string; m3: number }[],
  principal: Principal,
  f: Formatter,
  now = Date.now(),
): string {
  const ctx = tileCtx(u, rules, f, now);
  const maxGas = Math.max(0.001, ...gas.map((g) => g.m3));
  const devices = u.devices
    .map(
      (d) =>
        `<li>${h(d.id)} ${badge(d.online ? 'online' : 'offline', d.online ? 'online' : 'offline')} · seen ${timeAgo(f, d.lastSeenAt, now)}</li>`,
    )
    .join('');
  return `<p class="sub">${h(u.site)} · ${unitBadge(u, ctx)} · updated <span data-updated="${h(u.id)}">${timeAgo(f, lastUpdate(u), now)}</span></p>
<section class="tiles big" aria-label="Current state (choose one for the chart)">${digesterMetrics.map((m, i) => tile(u.id, m, u.latest[m], ctx, { pressed: i === 0 })).join('')}</section>
<section class="chart-panel" aria-labelledby="chart-title"><div class="ranges" role="group" aria-label="Range">${['24h', '7d', '30d', '1y'].map((r) => `<button type="button" data-range="${r}" aria-pressed="${r === '24h'}">${r}</button>`).join('')}</div>
<h2 id="chart-title">Temperature</h2><figure class="chart"><div id="chart" data-unit="${h(u.id)}"></div><figcaption id="chart-summary">Loading the chart…</figcaption></figure>
<details class="chart-data"><summary>The chart’s data as a table</summary><div class="table-wrap" tabindex="0" role="region" aria-label="Table (scrolls sideways)"><table id="chart-table"><caption class="muted">Newest first</caption><thead><tr><th scope="col">Time</th><th scope="col">Average</th><th scope="col">Min</th><th scope="col">Max</th></tr></thead><tbody></tbody></table></div></details>
<p class="muted" id="chart-note">Hourly average with min–max band (daily for 1 y), from the rollups. Dashed lines: warning and critical thresholds. Times in ${h(f.timeZone)}.</p></section>
<section><h2>Gas production</h2><table class="gas"><tbody>${gas
    .map(
      (g) =>
        `<tr><th scope="row">${h(f.day(g.day))}</th><td><meter min="0" max="${maxGas}" value="${g.m3}" aria-label="Gas on ${h(f.day(g.day))}">${g.m3}</meter></td><td>${g.m3.toFixed(2)} m³</td></tr>`,
    )
    .join('')}</tbody></table></section>
<section><h2>Open alerts</h2><div id="alerts" data-unit="${h(u.id)}">${alertList(u.alerts, principal, f)}</div></section>
${downloadForm(u.id, f, now)}
<section><h2>Sensors</h2><ul class="devices">${devices || '<li class="muted">none</li>'}</ul></section>`;
}

/** Readings and daily gas as CSV for a range of local days (the last 7 by default). */
function downloadForm(unitId: string, f: Formatter, now: number): string {
  const today = localStamp(new Date(now), f.timeZone).slice(0, 10);
  const weekAgo = localStamp(new Date(now - 6 * 86_400_000), f.timeZone).slice(0, 10);
  return `<section><h2>Download</h2><form class="download filters" method="get" action="/api/v1/units/${h(unitId)}/readings">
<label>From <input type="date" name="from" value="${weekAgo}" max="${today}" required></label><label>To <input type="date" name="to" value="${today}" max="${today}" required></label>
<button type="submit" name="format" value="csv">Readings (CSV)</button><button type="submit" name="format" value="csv" formaction="/api/v1/units/${h(unitId)}/gas">Daily gas (CSV)</button></form>
<p class="muted">Days in ${h(f.timeZone)}; readings at most 31 days at a time.</p></section>`;
}

export function collectionList(
  units: UnitSummary[],
  needsAt: number,
  rules: Rules,
  f: Formatter,
  now = Date.now(),
): string {
  if (units.length === 0)
    return '<p class="empty">No collection points to show. A collector sees the collection points an administrator has assigned to them.</p>';
  const sorted = [...units].sort(
    (a, b) => (b.latest.fill_level_pct?.value ?? -1) - (a.latest.fill_level_pct?.value ?? -1),
  );
  const due = sorted.filter((u) => (u.latest.fill_level_pct?.value ?? 0) >= needsAt).length;
  // A bin whose fill level is not current may be full: "nothing to collect" is not known then.
  const unknown = sorted.filter(
    (u) =>
      tileState('fill_level_pct', u.latest.fill_level_pct, tileCtx(u, rules, f, now)).cls ===
        'stale' || !u.latest.fill_level_pct,
  ).length;
  const summary = [
    due > 0
      ? badge('warning', `${due} need${due === 1 ? 's' : ''} collection`)
      : unknown === 0
        ? badge('healthy', 'nothing to collect')
        : '',
    unknown > 0
      ? badge('stale', `${unknown} fill level${unknown === 1 ? '' : 's'} not current`)
      : '',
  ]
    .filter(Boolean)
    .join(' ');
  return `<p class="sub">${summary} (at ${needsAt} % full)</p>
<section class="cards">${sorted
    .map((u) => {
      const ctx = tileCtx(u, rules, f, now);
      const fill = u.latest.fill_level_pct?.value;
      const needs = fill != null && fill >= needsAt;
      const w = worst(u, ctx);
      const state = needs
        ? `${badge('warning', 'needs collection')}${w === 'healthy' ? '' : ` ${unitBadge(u, ctx)}`}`
        : w === 'healthy'
          ? badge('healthy', 'ok')
          : unitBadge(u, ctx);
      return `<article class="card ${needs && w !== 'critical' ? 'warning' : w}" id="unit-${h(u.id)}" data-unit="${h(u.id)}"><h2>${h(u.name)} <small>${h(u.site)}</small></h2>
<p><meter min="0" max="100" low="${Math.min(needsAt, 60)}" high="${needsAt}" optimum="0" value="${fill ?? 0}" data-unit="${h(u.id)}" data-metric="fill_level_pct" aria-label="Fill level">${fill ?? 0} %</meter></p>
<div class="tiles">${['fill_level_pct', 'weight_kg', 'lid_open', 'temperature_c'].map((m) => tile(u.id, m, u.latest[m], ctx)).join('')}</div>
<p class="meta">${state} · updated <span data-updated="${h(u.id)}">${timeAgo(f, lastUpdate(u), now)}</span></p></article>`;
    })
    .join('')}</section>`;
}

/** An active certificate's days left; a device whose certificates are all revoked reads "revoked". */
function certCell(
  row: Pick<FleetRow, 'certExpires' | 'certStatus'>,
  f: Formatter,
  now: number,
): string {
  if (!row.certExpires)
    return row.certStatus === 'revoked'
      ? badge('critical', 'revoked')
      : row.certStatus
        ? badge('unknown', row.certStatus)
        : badge('unknown', 'none');
  const days = Math.floor((new Date(row.certExpires).getTime() - now) / 86_400_000);
  const health: Health = days < 7 ? 'critical' : days < 30 ? 'warning' : 'healthy';
  return `${badge(health, days < 0 ? 'expired' : `${days} days left`)} <small>${h(f.dateTime(row.certExpires))}</small>`;
}

const batteryText = (health: Health) =>
  health === 'critical' ? ' (very low)' : health === 'warning' ? ' (low)' : '';

export function fleetTable(
  rows: FleetRow[],
  rules: Rules,
  filter: { kind?: string; site?: string; state?: string; q?: string },
  sites: string[],
  f: Formatter,
  now = Date.now(),
): string {
  const online = rows.filter((r) => r.online).length;
  const option = (value: string, label: string, current?: string) =>
    `<option value="${h(value)}"${value === (current ?? '') ? ' selected' : ''}>${h(label)}</option>`;
  const form = `<form class="filters" method="get" action="/fleet">
<label>Kind <select name="kind">${option('', 'all', filter.kind)}${option('biodigester', 'biodigester', filter.kind)}${option('collection_point', 'collection point', filter.kind)}</select></label>
<label>Site <select name="site">${option('', 'all', filter.site)}${sites.map((s) => option(s, s, filter.site)).join('')}</select></label>
<label>State <select name="state">${option('', 'all', filter.state)}${option('online', 'online', filter.state)}${option('offline', 'offline', filter.state)}${option('attention', 'needs attention', filter.state)}</select></label>
<label>Search <input name="q" value="${h(filter.q ?? '')}" placeholder="device or unit"></label><button type="submit">Filter</button></form>`;
  const body = rows
    .map((r) => {
      const battery = healthOf(
        rules.filter((x) => x.metric === 'battery_v'),
        'battery_v',
        r.battery,
      );
      return `<tr data-device="${h(r.id)}"><td data-label="Device"><a href="/fleet/${h(r.id)}">${h(r.id)}</a><br><small>${h(r.site)} · ${h(r.unit)}</small></td>
<td data-label="State" data-online>${badge(r.online ? 'online' : 'offline', r.online ? 'online' : 'offline')}</td><td data-label="Last seen" data-seen>${timeAgo(f, r.lastSeenAt, now)}</td>
<td data-label="Battery" data-metric="battery_v" class="${battery}">${h(valueWithUnit('battery_v', r.battery) + batteryText(battery))}</td><td data-label="Signal" data-metric="rssi_dbm">${h(valueWithUnit('rssi_dbm', r.rssi))}</td>
<td data-label="Firmware">${h(r.firmware ?? '—')}</td><td data-label="Certificate">${certCell(r, f, now)}</td><td data-label="Quarantine">${r.quarantined > 0 ? badge('warning', String(r.quarantined)) : '0'}</td><td data-label="Alerts">${r.openAlerts > 0 ? badge('warning', String(r.openAlerts)) : '0'}</td></tr>`;
    })
    .join('');
  return `${form}<p class="sub"><span data-count-online>${online}</span> online · <span data-count-offline>${rows.length - online}</span> offline · ${rows.length} devices</p>
<div class="table-wrap fleet-wrap" tabindex="0" role="region" aria-label="Devices"><table class="fleet"><thead><tr><th scope="col">Device</th><th scope="col">State</th><th scope="col">Last seen</th><th scope="col">Battery</th><th scope="col">Signal</th><th scope="col">Firmware</th><th scope="col">Certificate</th><th scope="col">Quarantine</th><th scope="col">Alerts</th></tr></thead>
<tbody>${body || '<tr><td colspan="9" class="empty">No devices match.</td></tr>'}</tbody></table></div>`;
}

export function deviceDetail(
  d: NonNullable<Awaited<ReturnType<DashboardQueries['device']>>>,
  alerts: Parameters<typeof alertList>[0],
  principal: Principal,
  rules: Rules,
  f: Formatter,
  now = Date.now(),
): string {
  const certs = d.certificates
    .map(
      (c) =>
        `<tr><td><code>${h(c.serial)}</code></td><td>${badge(c.status === 'active' ? 'healthy' : c.status === 'revoked' ? 'critical' : 'unknown', c.status)}</td><td>${h(f.dateTime(c.issuedAt))}</td><td>${h(f.dateTime(c.notAfter))}</td><td>${c.status === 'active' ? certCell({ certExpires: c.notAfter, certStatus: 'active' }, f, now) : h(f.dateTime(c.revokedAt))}</td><td>${h(c.issuedBy)}</td></tr>`,
    )
    .join('');
  const quarantined = d.quarantine
    .map(
      (q) =>
        `<tr><td>${q.id}</td><td>${h(f.dateTime(q.receivedAt))}</td><td>${h(q.status)}</td><td>${q.reasons.map((r) => `<code>${h(r.code)}</code> ${h(r.field)}: ${h(r.message)}`).join('<br>')}</td></tr>`,
    )
    .join('');
  const refusals = d.securityEvents
    .map(
      (e) =>
        `<tr data-security="${h(e.action)}"><td>${h(f.dateTime(e.at))}</td><td>${h(e.action.replace(/^security\./, '').replace(/_/g, ' '))}</td><td><code>${h(e.reason ?? '')}</code></td><td>${e.count ?? 1}</td><td><code>${h(e.certSerial ?? '')}</code></td><td><code>${h(e.target ?? '')}</code></td></tr>`,
    )
    .join('');
  const battery = healthOf(rules, 'battery_v', d.battery);
  const item = (label: string, value: string, cls = '') =>
    `<div><dt>${h(label)}</dt><dd${cls ? ` class="${cls}"` : ''}>${value}</dd></div>`;
  return `<p class="sub">${h(d.site)} · ${h(d.unit)} · ${h(d.kind.replace('_', ' '))}</p>
<dl class="status">${item('State', badge(d.online ? 'online' : 'offline', d.online ? 'online' : 'offline'))}${item('Last seen', timeAgo(f, d.lastSeenAt, now))}${item('Registry', h(d.status))}${item('Firmware', h(d.firmware ?? '—'))}${item('Battery', h(valueWithUnit('battery_v', d.battery) + batteryText(battery)), battery)}${item('Signal', h(valueWithUnit('rssi_dbm', d.rssi)))}${item('Certificate', certCell(d, f, now))}</dl>
<section><h2>Alerts</h2>${alertList(alerts, principal, f)}</section>
<section><h2>Certificates</h2><div class="table-wrap" tabindex="0" role="region" aria-label="Table (scrolls sideways)"><table class="certs"><thead><tr><th scope="col">Serial</th><th scope="col">Status</th><th scope="col">Issued</th><th scope="col">Expires</th><th scope="col">Left / revoked</th><th scope="col">Issued by</th></tr></thead><tbody>${certs || '<tr><td colspan="6" class="empty">none</td></tr>'}</tbody></table></div></section>
<section><h2>Security events (7 days)</h2><div class="table-wrap" tabindex="0" role="region" aria-label="Table (scrolls sideways)"><table><thead><tr><th scope="col">Recorded</th><th scope="col">What</th><th scope="col">Reason</th><th scope="col">Count</th><th scope="col">Certificate</th><th scope="col">Sample</th></tr></thead><tbody>${refusals || '<tr><td colspan="6" class="empty">none</td></tr>'}</tbody></table></div></section>
<section><h2>Recent quarantine</h2><div class="table-wrap" tabindex="0" role="region" aria-label="Table (scrolls sideways)"><table><thead><tr><th scope="col">#</th><th scope="col">Received</th><th scope="col">Status</th><th scope="col">Why</th></tr></thead><tbody>${quarantined || '<tr><td colspan="4" class="empty">nothing quarantined</td></tr>'}</tbody></table></div></section>
<p class="muted">Metrics this kind reports: ${metricsForKind(d.kind)
    .map((m) => h(m))
    .join(', ')}.</p>`;
}
