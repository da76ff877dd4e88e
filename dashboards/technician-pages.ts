import { can } from '../auth/permissions.ts';
import type { Principal } from '../auth/principal.ts';
import { reasonCodes } from '../ingest/index.ts';
import { revocationReasons } from '../provisioning/pki-errors.ts';
import type { Formatter } from './format-fns.ts';
import { badge, h, metricLabel, timeAgo } from './html.ts';

/**
 * The technician's pages (issue 19): register and enrol a device, act on its certificates and
 * status, review the quarantine. Every form is `data-tech`: /assets/technician.js posts it with
 * the session's CSRF token (a plain form cannot send the header the API checks) and asks for
 * confirmation where the form says `data-confirm`. All text comes from the catalogue.
 */

export interface UnitOption {
  id: string;
  name: string;
  kind: string;
  site: string;
}

/** A status line after an action (`?done=` on a redirect, or a result rendered in place). */
export function notice(text: string | undefined, kind: 'status' | 'alert' = 'status'): string {
  return text ? `<p class="notice ${kind}" role="${kind}">${h(text)}</p>` : '';
}

/** The technician's starting page: what this role may do here. */
export function hubPage(p: Principal, f: Formatter): string {
  const t = f.t;
  const items = [
    can(p.role, 'enrolment:create') &&
      can(p.role, 'devices:write') && [
        '/manage/devices/new',
        t('tech.hub.register'),
        t('tech.hub.registerHint'),
      ],
    can(p.role, 'quarantine:read') && [
      '/manage/quarantine',
      t('tech.hub.quarantine'),
      t('tech.hub.quarantineHint'),
    ],
    can(p.role, 'alerts:configure') && [
      '/manage/rules',
      t('tech.hub.rules'),
      t('tech.hub.rulesHint'),
    ],
    can(p.role, 'users:read') && ['/manage/users', t('tech.hub.users'), t('tech.hub.usersHint')],
    can(p.role, 'firmware:write') && [
      '/firmware',
      t('tech.hub.firmware'),
      t('tech.hub.firmwareHint'),
    ],
    can(p.role, 'dashboard:fleet') && ['/fleet', t('tech.hub.fleet'), t('tech.hub.fleetHint')],
  ].filter((x): x is [string, string, string] => Array.isArray(x));
  return `<ul class="tech-hub">${items.map(([href, label, hint]) => `<li><a href="${href}">${h(label)}</a><p class="muted">${h(hint)}</p></li>`).join('')}</ul>`;
}

const kindName = (f: Formatter, kind: string) =>
  kind === 'biodigester' ? f.t('tech.kind.biodigester') : f.t('tech.kind.collectionPoint');

export function registerForm(units: UnitOption[], f: Formatter, error?: string): string {
  const t = f.t;
  const sites = [...new Set(units.map((u) => u.site))].sort();
  const options = sites
    .map(
      (s) =>
        `<optgroup label="${h(s)}">${units
          .filter((u) => u.site === s)
          .map(
            (u) => `<option value="${h(u.id)}">${h(u.name)} · ${h(kindName(f, u.kind))}</option>`,
          )
          .join('')}</optgroup>`,
    )
    .join('');
  return `${notice(error, 'alert')}<form class="tech-form" method="post" action="/manage/devices" data-tech>
<label>${h(t('tech.register.unit'))} <select name="unit" required><option value="">${h(t('tech.register.chooseUnit'))}</option>${options}</select></label>
<label>${h(t('tech.register.id'))} <small>${h(t('tech.register.idHint'))}</small> <input name="id" maxlength="64" pattern="[a-z0-9][a-z0-9_\\-]{2,63}" autocapitalize="none" autocomplete="off"></label>
<label>${h(t('tech.register.hardware'))} <input name="hardwareRevision" maxlength="64" autocomplete="off"></label>
<button type="submit">${h(t('tech.register.submit'))}</button></form>
<p class="muted">${h(t('tech.register.note'))}</p>`;
}

/** The one time an enrolment token is shown: the response to the POST that made it (never stored, never on a GET). */
export function enrolmentToken(
  o: { deviceId: string; token: string; expiresAt: string; qrSvg: string; created: boolean },
  f: Formatter,
): string {
  const t = f.t;
  // The QR library's SVG carries no style attribute (the CSP forbids inline style); a label is added for screen readers.
  const label = h(t('tech.enrol.qrLabel', { id: o.deviceId }));
  const svg = o.qrSvg.replace(/<svg\b/, (tag) => `${tag} role="img" aria-label="${label}"`);
  return `${notice(o.created ? t('tech.enrol.created', { id: o.deviceId }) : t('tech.enrol.newToken', { id: o.deviceId }))}
<section class="enrolment" aria-labelledby="token-title"><h2 id="token-title">${h(t('tech.enrol.title'))}</h2>
<p class="notice alert" role="alert">${h(t('tech.enrol.once'))}</p>
<figure class="qr" data-qr>${svg}<figcaption>${h(t('tech.enrol.qrCaption'))}</figcaption></figure>
<p><label>${h(t('tech.enrol.token'))} <input class="token" id="enrolment-token" value="${h(o.token)}" readonly data-token></label></p>
<p>${h(t('tech.enrol.expires'))} ${h(f.dateTime(o.expiresAt))}</p>
<p>${h(t('tech.enrol.how'))}</p>
<p><a href="/fleet/${h(o.deviceId)}">${h(t('tech.enrol.toDevice', { id: o.deviceId }))}</a></p></section>`;
}

export interface PanelDevice {
  id: string;
  status: string;
  certificates: { serial: string; status: string }[];
}

/** Actions and battery/signal history on the device page (admin and technician). */
export function devicePanel(d: PanelDevice, p: Principal, f: Formatter, done?: string): string {
  const t = f.t;
  const id = h(d.id);
  const forms: string[] = [];
  const active = d.certificates.filter((c) => c.status === 'active');
  if (can(p.role, 'enrolment:create') && d.status !== 'suspended' && d.status !== 'retired')
    forms.push(
      `<form method="post" action="/manage/devices/${id}/enrolment-token" data-tech><button type="submit">${h(t('tech.device.newToken'))}</button></form>`,
    );
  if (can(p.role, 'certificates:issue') && active.length > 0)
    forms.push(
      `<form method="post" action="/manage/devices/${id}/rotate" data-tech data-confirm="${h(t('tech.device.rotateConfirm', { id: d.id }))}"><button type="submit">${h(t('tech.device.rotate'))}</button></form>`,
    );
  if (can(p.role, 'devices:write')) {
    if (d.status === 'suspended')
      forms.push(
        `<form method="post" action="/manage/devices/${id}/activate" data-tech data-confirm="${h(t('tech.device.activateConfirm', { id: d.id }))}"><button type="submit">${h(t('tech.device.activate'))}</button></form>`,
      );
    else if (d.status !== 'retired')
      forms.push(
        `<form method="post" action="/manage/devices/${id}/suspend" data-tech data-confirm="${h(t('tech.device.suspendConfirm', { id: d.id }))}"><button type="submit" class="danger">${h(t('tech.device.suspend'))}</button></form>`,
      );
  }
  if (can(p.role, 'certificates:revoke'))
    for (const c of active)
      forms.push(
        `<form class="tech-form revoke" method="post" action="/manage/devices/${id}/revoke" data-tech data-confirm="${h(t('tech.device.revokeConfirm', { serial: c.serial }))}"><input type="hidden" name="serial" value="${h(c.serial)}"><label>${h(t('tech.device.revokeReason', { serial: c.serial }))} <select name="reason" required>${Object.keys(
          revocationReasons,
        )
          .map((r) => `<option value="${h(r)}">${h(r)}</option>`)
          .join(
            '',
          )}</select></label><button type="submit" class="danger">${h(t('tech.device.revoke'))}</button></form>`,
      );
  const metrics = ['battery_v', 'rssi_dbm'];
  const chart = can(p.role, 'readings:read')
    ? `<section class="chart-panel" aria-labelledby="chart-title"><h2>${h(t('tech.device.history'))}</h2>
<div class="tiles" role="group" aria-label="${h(t('tech.device.metric'))}">${metrics.map((m, i) => `<button type="button" class="tile" data-metric="${m}" aria-pressed="${i === 0}"><span class="label">${h(metricLabel(m, t).name)}</span></button>`).join('')}</div>
<div class="ranges" role="group" aria-label="${h(t('tech.device.range'))}">${['24h', '7d', '30d', '1y'].map((r) => `<button type="button" data-range="${r}" aria-pressed="${r === '24h'}">${r}</button>`).join('')}</div>
<h3 id="chart-title">${h(metricLabel('battery_v', t).name)}</h3><figure class="chart"><div id="chart" data-series="/api/v1/devices/${id}/series"></div><figcaption id="chart-summary">${h(t('tech.device.chartLoading'))}</figcaption></figure>
<details class="chart-data"><summary>${h(t('tech.device.chartTable'))}</summary><div class="table-wrap" tabindex="0" role="region" aria-label="${h(t('tech.table.scrolls'))}"><table id="chart-table"><thead><tr><th scope="col">${h(t('tech.device.time'))}</th><th scope="col">${h(t('tech.device.avg'))}</th><th scope="col">${h(t('tech.device.min'))}</th><th scope="col">${h(t('tech.device.max'))}</th></tr></thead><tbody></tbody></table></div></details>
<p class="muted" id="chart-note">${h(t('tech.device.chartNote', { zone: f.timeZone }))}</p></section>`
    : '';
  const actions = forms.length
    ? `<section class="tech-actions" aria-labelledby="manage-title"><h2 id="manage-title">${h(t('tech.device.manage'))}</h2>${notice(done)}<div class="actions">${forms.join('')}</div></section>`
    : '';
  return actions + chart;
}

export interface QuarantineItem {
  id: number;
  deviceId: string;
  receivedAt: Date | string;
  topic: string;
  payload: string;
  payloadSize: number;
  reasons: { field: string; code: string; message: string }[];
  status: string;
}

export function quarantineList(
  items: QuarantineItem[],
  filter: { reason?: string; deviceId?: string; status?: string },
  p: Principal,
  f: Formatter,
  result?: string,
): string {
  const t = f.t;
  const act = can(p.role, 'quarantine:replay');
  const statuses = ['open', 'replayed', 'discarded'];
  const opt = (v: string, label: string, sel?: string) =>
    `<option value="${h(v)}"${v === (sel ?? '') ? ' selected' : ''}>${h(label)}</option>`;
  const filters = `<form class="filters" method="get" action="/manage/quarantine" role="search" aria-label="${h(t('tech.q.filters'))}">
<label>${h(t('tech.q.reason'))} <select name="reason" translate="no">${opt('', t('tech.q.any'), filter.reason)}${reasonCodes.map((c) => opt(c, c, filter.reason)).join('')}</select></label>
<label>${h(t('tech.q.device'))} <input name="deviceId" maxlength="64" value="${h(filter.deviceId ?? '')}" autocapitalize="none"></label>
<label>${h(t('tech.q.status'))} <select name="status">${opt('', t('tech.q.any'), filter.status)}${statuses.map((s) => opt(s, t(`tech.q.status.${s}` as 'tech.q.status.open'), filter.status)).join('')}</select></label>
<button type="submit">${h(t('tech.q.apply'))}</button></form>`;
  const rows = items
    .map(
      (q) =>
        `<tr data-quarantine="${q.id}">${act ? `<td>${q.status === 'open' ? `<input type="checkbox" name="ids" value="${q.id}" form="bulk" aria-label="${h(t('tech.q.select', { id: q.id }))}">` : ''}</td>` : ''}<td><a href="/manage/quarantine/${q.id}">${q.id}</a></td><td><a href="/fleet/${h(q.deviceId)}">${h(q.deviceId)}</a></td><td>${timeAgo(f, new Date(q.receivedAt))}</td><td>${q.reasons.map((r) => `<code>${h(r.code)}</code> ${h(r.field)}`).join('<br>')}</td><td>${badge(q.status === 'open' ? 'warning' : 'unknown', t(`tech.q.status.${q.status}` as 'tech.q.status.open'))}</td></tr>`,
    )
    .join('');
  const cols = act ? 6 : 5;
  const bulk = act
    ? `<form id="bulk" class="bulk" method="post" action="/manage/quarantine/bulk" data-tech data-confirm="${h(t('tech.q.bulkConfirm'))}"><button type="submit" name="action" value="replay">${h(t('tech.q.replay'))}</button> <button type="submit" name="action" value="discard" class="danger">${h(t('tech.q.discard'))}</button> <button type="button" data-select-all>${h(t('tech.q.selectAll'))}</button></form>`
    : '';
  return `${filters}${notice(result)}${bulk}<div class="table-wrap" tabindex="0" role="region" aria-label="${h(t('tech.table.scrolls'))}"><table class="quarantine"><thead><tr>${act ? `<th scope="col"><span class="visually-hidden">${h(t('tech.q.selectCol'))}</span></th>` : ''}<th scope="col">#</th><th scope="col">${h(t('tech.q.device'))}</th><th scope="col">${h(t('tech.q.received'))}</th><th scope="col">${h(t('tech.q.why'))}</th><th scope="col">${h(t('tech.q.status'))}</th></tr></thead><tbody>${rows || `<tr><td colspan="${cols}" class="empty">${h(t('tech.q.none'))}</td></tr>`}</tbody></table></div>`;
}

/** One item: its reasons and its payload as received, escaped (it is whatever a device sent). */
export function quarantineDetail(q: QuarantineItem, p: Principal, f: Formatter): string {
  const t = f.t;
  const act = can(p.role, 'quarantine:replay') && q.status === 'open';
  const truncated = q.payloadSize > Buffer.byteLength(q.payload);
  return `<p class="sub"><a href="/fleet/${h(q.deviceId)}">${h(q.deviceId)}</a> · <code>${h(q.topic)}</code> · ${h(f.dateTime(new Date(q.receivedAt)))} · ${badge(q.status === 'open' ? 'warning' : 'unknown', t(`tech.q.status.${q.status}` as 'tech.q.status.open'))}</p>
<h2>${h(t('tech.q.why'))}</h2><ul>${q.reasons.map((r) => `<li><code>${h(r.code)}</code> ${h(r.field)}: ${h(r.message)}</li>`).join('')}</ul>
<h2>${h(t('tech.q.payload'))}</h2>${truncated ? notice(t('tech.q.truncated', { size: q.payloadSize })) : ''}<pre class="payload" tabindex="0">${h(q.payload)}</pre>
${act ? `<form method="post" action="/manage/quarantine/bulk" data-tech class="bulk"><input type="hidden" name="ids" value="${q.id}"><button type="submit" name="action" value="replay">${h(t('tech.q.replayOne'))}</button> <button type="submit" name="action" value="discard" class="danger">${h(t('tech.q.discardOne'))}</button></form>` : ''}
<p><a href="/manage/quarantine">${h(t('tech.q.back'))}</a></p>`;
}
