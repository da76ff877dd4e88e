// layer: these are the dashboards' HTML views; they escape as every page the HTTP layer serves does
import { escapeHtml } from '../api/escape-html.ts';
import { can, type Permission } from '../auth/permissions.ts';
import type { Principal } from '../auth/principal.ts';
import { metricCatalogue, isMetricName } from '../devices/metrics.ts';
import type { Health } from './alert-rules.ts';
import type { Formatter } from './format-fns.ts';
import type { MessageKey } from '../i18n/index.ts';

/**
 * Server-rendered HTML for the dashboards: one layout, small helpers, every dynamic value
 * escaped. No inline script or style (the CSP forbids both): page data travels as JSON in a
 * `<script type="application/json">` block that /assets/app.js reads.
 */

export const h = escapeHtml;

/** A `<time>` the client keeps fresh ("3 minutes ago"); the full date and time in its title. */
export function timeAgo(
  f: Formatter,
  value: string | Date | null | undefined,
  now = Date.now(),
): string {
  if (value == null) return '<span class="muted">never</span>';
  const d = new Date(value);
  return `<time datetime="${d.toISOString()}" title="${h(f.dateTime(d))}" data-ago>${h(f.ago(d, now))}</time>`;
}

export function formatValue(metric: string, value: number | null | undefined): string {
  if (value == null) return '—';
  if (!isMetricName(metric)) return String(value);
  const spec = metricCatalogue[metric];
  if ('boolean' in spec) return value >= 0.5 ? 'open' : 'closed';
  const digits =
    metric === 'ph' || metric === 'battery_v'
      ? 2
      : metric === 'rssi_dbm' || Math.abs(value) >= 100
        ? 0
        : 1;
  return value.toFixed(digits);
}

/** A value with its unit, or a dash alone when there is none yet. */
export function valueWithUnit(metric: string, value: number | null | undefined): string {
  return value == null ? '—' : `${formatValue(metric, value)} ${metricLabel(metric).unit}`.trim();
}

export function metricLabel(metric: string): { name: string; unit: string } {
  const names: Record<string, string> = {
    temperature_c: 'Temperature',
    ph: 'pH',
    biogas_pressure_kpa: 'Gas pressure',
    methane_pct: 'Methane',
    gas_flow_lpm: 'Gas flow',
    slurry_level_pct: 'Slurry level',
    h2s_ppm: 'H₂S',
    fill_level_pct: 'Fill level',
    weight_kg: 'Weight',
    lid_open: 'Lid',
    battery_v: 'Battery',
    rssi_dbm: 'Signal',
  };
  const unit = isMetricName(metric) ? metricCatalogue[metric].unit : '';
  return { name: names[metric] ?? metric, unit: unit === 'bool' || unit === 'pH' ? '' : unit };
}

export function badge(health: Health | 'online' | 'offline' | 'stale', text: string): string {
  return `<span class="badge ${health}">${h(text)}</span>`;
}

const nav: { href: string; label: MessageKey; permission: Permission }[] = [
  { href: '/digesters', label: 'nav.digesters', permission: 'dashboard:digesters' },
  { href: '/collection', label: 'nav.collection', permission: 'dashboard:collection' },
  { href: '/fleet', label: 'nav.fleet', permission: 'dashboard:fleet' },
  { href: '/firmware', label: 'nav.firmware', permission: 'firmware:read' },
  { href: '/alerts', label: 'nav.alerts', permission: 'alerts:read' },
  { href: '/manage', label: 'nav.manage', permission: 'devices:write' },
];

export function navFor(principal: Principal): { href: string; label: MessageKey }[] {
  return nav.filter((n) => can(principal.role, n.permission));
}

/** The page every dashboard shares: header with the pages this role may open, main, data. */
export function layout(o: {
  title: string;
  principal: Principal;
  active: string;
  body: string;
  format: Formatter;
  data?: Record<string, unknown>;
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
  }).replace(/</g, '\\u003c');
  const t = o.format.t;
  return `<!doctype html><html lang="${o.format.lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${h(o.title)} · Thamani IoT</title><link rel="icon" href="data:,"><meta name="csrf-token" content="${h(o.principal.session?.csrfToken ?? '')}">
<link rel="stylesheet" href="/assets/vendor/uPlot.min.css"><link rel="stylesheet" href="/assets/app.css">${(o.extra?.styles ?? []).map((s) => `<link rel="stylesheet" href="${h(s)}">`).join('')}</head>
<body><a class="skip" href="#main">${h(t('layout.skip'))}</a><header><a class="brand" href="/">Thamani</a><nav aria-label="Pages">${links}</nav><span class="who">${h(o.principal.displayName)} · <a href="/logout" data-logout>${h(t('layout.signOut'))}</a></span></header>
<main id="main"><h1>${h(o.title)}</h1>${o.body}</main><p class="live" id="live" role="status" hidden>live</p>
<script type="application/json" id="page-data">${data}</script><script src="/assets/vendor/uPlot.iife.min.js" defer></script><script src="/assets/app.js" defer></script>${(o.extra?.scripts ?? []).map((s) => `<script src="${h(s)}" defer></script>`).join('')}</body></html>`;
}

/** A page for a refusal or a missing thing (the same layout without data). */
export function messagePage(title: string, text: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${h(title)} · Thamani IoT</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/app.css"></head>
<body><header><a class="brand" href="/">Thamani</a></header><main><h1>${h(title)}</h1><p>${h(text)}</p><p><a href="/">Home</a></p></main></body></html>`;
}
