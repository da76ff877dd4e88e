import { can } from '../auth/permissions.ts';
import type { Principal } from '../auth/principal.ts';
import type { OpenAlert } from './dashboard-repo.ts';
import type { Formatter } from './format-fns.ts';
import { badge, h, tHtml, timeAgo, valueWithUnit } from './html.ts';
import { isMessageKey, translateOr, translator, type Translate } from '../i18n/index.ts';

const english = translator('en');

/**
 * Alerts as a list people can act on: where (a link to the digester or collection point and to
 * the device), the value with its unit, what to do (guidance for every rule), repeats of the same
 * rule on the same device grouped, and acknowledging with a note.
 */

/** A rule's catalogue key: its id without the kind (`ph.low`, `device.offline`). */
const ruleKey = (ruleId: string) => ruleId.split('.').slice(1).join('.');

/** What to do, per rule (catalogue `alert.guidance.<metric>.<high|low>` or `.device.<check>`). */
export function guidanceFor(ruleId: string, t: Translate = english): string {
  return translateOr(t, `alert.guidance.${ruleKey(ruleId)}`, t('alert.guidance.default'));
}

/**
 * An alert's title in the reader's language: the catalogue's for a default rule whose title the
 * operator left as it was; an operator's own title as they wrote it.
 */
export function alertTitle(a: Pick<OpenAlert, 'ruleId' | 'title'>, t: Translate): string {
  const key = `alert.title.${ruleKey(a.ruleId)}`;
  return isMessageKey(key) && english(key) === a.title ? t(key) : a.title;
}

/** Guidance for every rule id (the client script shows it on alerts added live). */
export function guidanceMap(
  ruleIds: readonly string[],
  t: Translate = english,
): Record<string, string> {
  return Object.fromEntries(ruleIds.map((id) => [id, guidanceFor(id, t)]));
}

/** The value an alert opened on, with its unit: a metric's own unit, minutes offline, days left. */
export function alertValue(
  a: Pick<OpenAlert, 'ruleId' | 'metric' | 'openValue'>,
  t: Translate = english,
): string {
  if (a.openValue == null) return '';
  if (a.metric) return valueWithUnit(a.metric, a.openValue, t);
  if (a.ruleId.endsWith('.device.offline'))
    return t('alert.minOffline', { minutes: Math.round(a.openValue) });
  if (a.ruleId.endsWith('.device.cert_expiry'))
    return t('cert.daysLeft', { days: Math.round(a.openValue) });
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

function where(a: OpenAlert, principal: Principal, f: Formatter): string {
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
  return `${unitLink} · ${tHtml(f, 'alert.sensor', { id: device })}`;
}

export function alertList(
  alerts: OpenAlert[],
  principal: Principal,
  f: Formatter,
  opts: { showUnit?: boolean } = {},
): string {
  const t = f.t;
  if (alerts.length === 0) return `<p class="empty" data-alerts-empty>${h(t('alert.none'))}</p>`;
  const ack = can(principal.role, 'alerts:ack');
  return `<ul class="alerts">${groupAlerts(alerts)
    .map(({ alert: a, times }) => {
      const acked = a.acknowledgedAt
        ? `<p class="ack">${tHtml(f, 'alert.ackedBy', { ago: timeAgo(f, a.acknowledgedAt) }, { who: a.acknowledgedBy ?? '' })}${a.ackNote ? `: “${h(a.ackNote)}”` : ''}</p>`
        : ack && a.status === 'open'
          ? `<form class="ack-form" method="post" action="/api/v1/alerts/${a.id}/ack" data-alert="${a.id}"><label>${h(t('alert.note'))} <input name="note" maxlength="500" required placeholder="${h(t('alert.notePlaceholder'))}"></label><button type="submit">${h(t('alert.acknowledge'))}</button></form>`
          : '';
      const value = alertValue(a, t);
      const repeat = times > 1 ? ` · ${h(t('alert.times', { times }))}` : '';
      const sensor = tHtml(f, 'alert.sensor', {
        id: can(principal.role, 'dashboard:fleet')
          ? `<a href="/fleet/${h(a.deviceId)}">${h(a.deviceId)}</a>`
          : h(a.deviceId),
      });
      return `<li class="alert ${a.status === 'open' ? a.severity : 'closed'}" data-alert-id="${a.id}" data-rule="${h(a.ruleId)}"><strong>${h(alertTitle(a, t))}</strong> ${badge(a.status === 'open' ? a.severity : 'unknown', a.status === 'open' ? t(`state.${a.severity}`) : t('alert.status.closed'))}
<p>${opts.showUnit ? `${where(a, principal, f)} · ` : `${sensor} · `}${value ? `${h(value)} · ` : ''}${repeat} ${tHtml(f, 'alert.opened', { ago: timeAgo(f, a.openedAt) })}${a.closedAt ? ` · ${tHtml(f, 'alert.closedAgo', { ago: timeAgo(f, a.closedAt) })}` : ''}</p>
<p class="guidance">${h(guidanceFor(a.ruleId, t))}</p>${acked}</li>`;
    })
    .join('')}</ul>`;
}
