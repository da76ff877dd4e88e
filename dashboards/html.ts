// layer: these are the dashboards' HTML views; they escape as every page the HTTP layer serves does
import { escapeHtml } from '../api/escape-html.ts';
import { can, type Permission } from '../auth/permissions.ts';
import type { Principal } from '../auth/principal.ts';
import { CSRF_FIELD } from '../auth/authenticator.ts';
import { metricCatalogue, isMetricName, metricNames } from '../devices/metrics.ts';
import type { Health } from './alert-rules.ts';
import type { Formatter } from './format-fns.ts';
import {
  messagesFor,
  translator,
  translateOr,
  type Lang,
  type MessageKey,
  type Translate,
  type Vars,
} from '../i18n/index.ts';

/**
 * Server-rendered HTML for the dashboards: one layout, small helpers, every dynamic value
 * escaped. No inline script or style (the CSP forbids both): page data travels as JSON in a
 * `<script type="application/json">` block that /assets/app.js reads.
 */

export const h = escapeHtml;

const english = translator('en');

/**
 * A catalogue message as HTML with some placeholders filled by HTML (a `<time>`, a link): the
 * message is escaped first, then `{name}` is replaced by `html[name]` (already safe HTML) or by
 * the escaped `text[name]`.
 */
export function tHtml(
  f: Pick<Formatter, 't'>,
  key: MessageKey,
  html: Record<string, string>,
  text: Vars = {},
): string {
  return h(f.t(key, text)).replace(/\{(\w+)\}/g, (m, name: string) => html[name] ?? m);
}

/** A `<time>` the client keeps fresh ("3 minutes ago"); the full date and time in its title. */
export function timeAgo(
  f: Formatter,
  value: string | Date | null | undefined,
  now = Date.now(),
): string {
  if (value == null) return `<span class="muted">${h(f.t('time.never'))}</span>`;
  const d = new Date(value);
  return `<time datetime="${d.toISOString()}" title="${h(f.dateTime(d))}" data-ago>${h(f.ago(d, now))}</time>`;
}

/** A value as shown (digits per metric; a boolean as a word in the reader's language). */
export function formatValue(
  metric: string,
  value: number | null | undefined,
  t: Translate = english,
): string {
  if (value == null) return '—';
  if (!isMetricName(metric)) return String(value);
  const spec = metricCatalogue[metric];
  if ('boolean' in spec) return t(value >= 0.5 ? 'value.open' : 'value.closed');
  const digits =
    metric === 'ph' || metric === 'battery_v'
      ? 2
      : metric === 'rssi_dbm' || Math.abs(value) >= 100
        ? 0
        : 1;
  return value.toFixed(digits);
}

/** A value with its unit, or a dash alone when there is none yet. */
export function valueWithUnit(
  metric: string,
  value: number | null | undefined,
  t: Translate = english,
): string {
  return value == null
    ? '—'
    : `${formatValue(metric, value, t)} ${metricLabel(metric, t).unit}`.trim();
}

/** A metric's name in the reader's language (catalogue `metric.<name>`) and its unit. */
export function metricLabel(
  metric: string,
  t: Translate = english,
): { name: string; unit: string } {
  const unit = isMetricName(metric) ? metricCatalogue[metric].unit : '';
  return {
    name: translateOr(t, `metric.${metric}`, metric),
    unit: unit === 'bool' || unit === 'pH' ? '' : unit,
  };
}

export function badge(health: Health | 'online' | 'offline' | 'stale', text: string): string {
  return `<span class="badge ${health}">${h(text)}</span>`;
}

const nav: { href: string; label: MessageKey; permission: Permission }[] = [
  { href: '/digesters', label: 'nav.digesters', permission: 'dashboard:digesters' },
  { href: '/collection', label: 'nav.collection', permission: 'dashboard:collection' },
  { href: '/collection/due', label: 'field.nav.due', permission: 'dashboard:collection' },
  { href: '/fleet', label: 'nav.fleet', permission: 'dashboard:fleet' },
  { href: '/firmware', label: 'nav.firmware', permission: 'firmware:read' },
  { href: '/alerts', label: 'nav.alerts', permission: 'alerts:read' },
  { href: '/manage', label: 'nav.manage', permission: 'devices:write' },
];

export function navFor(principal: Principal): { href: string; label: MessageKey }[] {
  return nav.filter((n) => can(principal.role, n.permission));
}

/**
 * The user's choice of language (each named in itself); posted by the client script with the
 * CSRF header to PUT /api/v1/users/me/language, then the page reloads in it.
 */
function languageForm(f: Formatter, chosen: Lang | null | undefined, back: string): string {
  const option = (value: string, name: string, lang?: Lang) =>
    `<option value="${value}"${lang ? ` lang="${lang}"` : ''}${(chosen ?? 'browser') === value ? ' selected' : ''}>${name}</option>`;
  // Without the script the form posts itself (POST, same URL) and the server sends it back here.
  return `<form class="lang" method="post" action="/api/v1/users/me/language" data-language><input type="hidden" name="back" value="${h(back)}"><label>${h(f.t('settings.language'))} <select name="language">${option('en', 'English', 'en')}${option('sw', 'Kiswahili', 'sw')}${option('browser', h(f.t('settings.browser')))}</select></label><button type="submit">${h(f.t('settings.save'))}</button></form>`;
}

/** The messages the client script writes (dashboards/public/js/), sent with every page. */
const clientMessages: MessageKey[] = [
  'state.healthy',
  'state.warning',
  'state.critical',
  'state.unknown',
  'state.stale',
  'state.sensorOffline',
  'state.online',
  'state.offline',
  'battery.low',
  'battery.veryLow',
  'value.open',
  'value.closed',
  'alert.ackedBy',
  'alert.ackFailed',
  'alert.note',
  'alert.notePlaceholder',
  'alert.acknowledge',
  'alert.sensor',
  'alert.opened',
  'alert.minOffline',
  'alert.guidance.default',
  'cert.daysLeft',
  'kind.biodigester',
  'kind.collection_point',
  'chart.empty',
  'chart.summaryHourly',
  'chart.summaryDaily',
  'chart.thresholds',
  'chart.failed',
  'chart.time',
  'chart.average',
  'chart.min',
  'chart.max',
  'range.24h',
  'range.7d',
  'range.30d',
  'range.1y',
];

/**
 * Every POST form of a page carries the session's CSRF token in a hidden field, so it works
 * with scripts off or not yet loaded (a slow phone); the scripts send the header instead, and
 * the server accepts either (auth/authenticator.ts). Done here, once for every page, so that no
 * form can be written without it.
 */
export function withCsrfFields(html: string, token: string | undefined): string {
  if (!token) return html;
  const field = `<input type="hidden" name="${CSRF_FIELD}" value="${h(token)}">`;
  return html.replace(/<form\b[^>]*>/gi, (tag) =>
    /\smethod\s*=\s*"?post"?/i.test(tag) ? tag + field : tag,
  );
}

/** The page every dashboard shares: header with the pages this role may open, main, data. */
export function layout(o: {
  title: string;
  principal: Principal;
  active: string;
  body: string;
  format: Formatter;
  data?: Record<string, unknown>;
  /** Page scripts besides /assets/app.js (same origin, deferred: the CSP allows only 'self'). */
  scripts?: readonly string[];
  /** More same-origin stylesheets and scripts for this page (the technician's forms). */
  extra?: { styles?: readonly string[]; scripts?: readonly string[] };
}): string {
  const links = navFor(o.principal)
    .map(
      (n) =>
        `<a href="${n.href}"${n.href === o.active ? ' aria-current="page"' : ''}>${h(o.format.t(n.label))}</a>`,
    )
    .join('');
  // JSON in a data block: `<` is escaped so the text can never close the script element.
  const data = JSON.stringify({
    ...o.data,
    locale: o.format.locale,
    timeZone: o.format.timeZone,
    messages: messagesFor(o.format.lang, clientMessages),
    labels: Object.fromEntries(
      metricNames.map((m) => {
        const l = metricLabel(m, o.format.t);
        return [m, [l.name, l.unit]];
      }),
    ),
  }).replace(/</g, '\\u003c');
  const t = o.format.t;
  const token = o.principal.session?.csrfToken;
  return withCsrfFields(
    `<!doctype html><html lang="${o.format.lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${h(o.title)} · Thamani IoT</title><link rel="icon" href="data:,"><meta name="csrf-token" content="${h(o.principal.session?.csrfToken ?? '')}">
<link rel="stylesheet" href="/assets/vendor/uPlot.min.css"><link rel="stylesheet" href="/assets/app.css">${(o.extra?.styles ?? []).map((s) => `<link rel="stylesheet" href="${h(s)}">`).join('')}</head>
<body><a class="skip" href="#main">${h(t('layout.skip'))}</a><header><a class="brand" href="/">Thamani</a><nav aria-label="${h(t('layout.pages'))}">${links}</nav><span class="who">${h(o.principal.displayName)} · <a href="/logout" data-logout>${h(t('layout.signOut'))}</a></span>${o.principal.kind === 'user' ? languageForm(o.format, o.principal.language, o.active) : ''}</header>
<main id="main"><h1>${h(o.title)}</h1>${o.body}</main><p class="live" id="live" role="status" hidden>${h(t('layout.live'))}</p>
<script type="application/json" id="page-data">${data}</script><script src="/assets/vendor/uPlot.iife.min.js" defer></script><script type="module" src="/assets/app.js"></script>${[...(o.scripts ?? []), ...(o.extra?.scripts ?? [])].map((s) => `<script src="${h(s)}" defer></script>`).join('')}</body></html>`,
    token,
  );
}

/** A page for a refusal or a missing thing (the same layout without data), in `f`'s language. */
export function messagePage(
  title: string,
  text: string,
  f: Pick<Formatter, 't' | 'lang'> = { t: english, lang: 'en' },
): string {
  return `<!doctype html><html lang="${f.lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${h(title)} · Thamani IoT</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/app.css"></head>
<body><header><a class="brand" href="/">Thamani</a></header><main><h1>${h(title)}</h1><p>${h(text)}</p><p><a href="/">${h(f.t('layout.home'))}</a></p></main></body></html>`;
}
