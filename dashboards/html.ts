// layer: these are the dashboards' HTML views; they escape as every page the HTTP layer serves does
import { escapeHtml } from '../api/escape-html.ts';
import { can, type Permission } from '../auth/permissions.ts';
import type { Principal } from '../auth/principal.ts';
import { metricCatalogue, isMetricName } from '../devices/metrics.ts';
import type { Health } from './alert-rules.ts';

/**
 * Server-rendered HTML for the dashboards: one layout, small helpers, every dynamic value
 * escaped. No inline script or style (the CSP forbids both): page data travels as JSON in a
 * `<script type="application/json">` block that /assets/app.js reads.
 */

export const h = escapeHtml;

/** Kenya keeps UTC+3 all year (EAT). */
const EAT = 3 * 3_600_000;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function formatTime(value: string | Date | null | undefined): string {
  if (value == null) return '—';
  const d = new Date(new Date(value).getTime() + EAT);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

/** A `<time>` the client keeps fresh as "3 min ago". */
export function timeAgo(value: string | Date | null | undefined, now = Date.now()): string {
  if (value == null) return '<span class="muted">never</span>';
  const d = new Date(value);
  return `<time datetime="${d.toISOString()}" title="${h(formatTime(d))} EAT" data-ago>${h(agoText(now - d.getTime()))}</time>`;
}

export function agoText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

export function formatValue(metric: string, value: number | null | undefined): string {
  if (value == null) return '—';
  if (!isMetricName(metric)) return String(value);
  const spec = metricCatalogue[metric];
  if ('boolean' in spec) return value >= 0.5 ? 'open' : 'closed';
  const digits = metric === 'ph' || metric === 'battery_v' ? 2 : metric === 'rssi_dbm' || Math.abs(value) >= 100 ? 0 : 1;
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

export function badge(health: Health | 'online' | 'offline', text: string): string {
  return `<span class="badge ${health}">${h(text)}</span>`;
}

const nav: { href: string; label: string; permission: Permission }[] = [
  { href: '/digesters', label: 'Digesters', permission: 'dashboard:digesters' },
  { href: '/collection', label: 'Collection', permission: 'dashboard:collection' },
  { href: '/fleet', label: 'Fleet', permission: 'dashboard:fleet' },
  { href: '/firmware', label: 'Firmware', permission: 'firmware:read' },
  { href: '/alerts', label: 'Alerts', permission: 'alerts:read' },
];

export function navFor(principal: Principal): { href: string; label: string }[] {
  return nav.filter((n) => can(principal.role, n.permission));
}

/** The page every dashboard shares: header with the pages this role may open, main, data. */
export function layout(o: { title: string; principal: Principal; active: string; body: string; data?: unknown }): string {
  const links = navFor(o.principal)
    .map((n) => `<a href="${n.href}"${n.href === o.active ? ' aria-current="page"' : ''}>${h(n.label)}</a>`)
    .join('');
  // JSON in a data block: `<` is escaped so the text can never close the script element.
  const data = JSON.stringify(o.data ?? {}).replace(/</g, '\\u003c');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${h(o.title)} · Thamani IoT</title><link rel="icon" href="data:,"><meta name="csrf-token" content="${h(o.principal.session?.csrfToken ?? '')}">
<link rel="stylesheet" href="/assets/vendor/uPlot.min.css"><link rel="stylesheet" href="/assets/app.css"></head>
<body><header><a class="brand" href="/">Thamani</a><nav>${links}</nav><span class="who">${h(o.principal.displayName)} · <a href="/logout" data-logout>Sign out</a></span></header>
<main><h1>${h(o.title)}</h1>${o.body}</main><p class="live" id="live" hidden>live</p>
<script type="application/json" id="page-data">${data}</script><script src="/assets/vendor/uPlot.iife.min.js" defer></script><script src="/assets/app.js" defer></script></body></html>`;
}

/** A page for a refusal or a missing thing (the same layout without data). */
export function messagePage(title: string, text: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${h(title)} · Thamani IoT</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/app.css"></head>
<body><header><a class="brand" href="/">Thamani</a></header><main><h1>${h(title)}</h1><p>${h(text)}</p><p><a href="/">Home</a></p></main></body></html>`;
}
