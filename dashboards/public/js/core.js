// The page's data, messages and formatting, shared by the other modules. Dates and numbers as
// the server writes them: Intl, the page's language, the configured zone (page data).

export const data = JSON.parse(document.getElementById('page-data')?.textContent || '{}');
export const csrf =
  document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') || '';
export const rules = data.rules || [];

/** A catalogue message in the page's language (page data `messages`), `{name}` filled. */
export function msg(key, vars) {
  const text = (data.messages || {})[key] || key;
  return vars
    ? text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m))
    : text;
}

/** A metric's [name, unit] in the page's language (page data `labels`, from the catalogue). */
export function label(metric) {
  return (data.labels || {})[metric] || [metric, ''];
}

/** A unit's effective rules: its own thresholds where it has any (page data `unitRules`). */
export function rulesFor(unitId) {
  return (data.unitRules || {})[unitId] || rules;
}

/** As dashboards/pages.ts staleAfterMs(): the unit's own offline rule, else the page's. */
export function staleMsFor(unitId) {
  const r = rulesFor(unitId).find((x) => x.condition === 'offline_minutes');
  return r ? r.warn * 60000 : data.staleMs;
}

// Same rules as dashboards/alert-rules.ts healthOf(): the worst severity any rule gives a value,
// by the unit's effective rules (dashboards/alert-override-fns.ts).
export function health(metric, value, unitId) {
  if (value == null) return 'unknown';
  let worst = 'healthy';
  for (const r of rulesFor(unitId)) {
    if (r.metric !== metric || r.enabled === false) continue;
    const low = r.condition === 'below' || r.condition === 'cert_expiry_days';
    const past = (t) => (low ? value < t : value > t);
    if (r.critical != null && past(r.critical)) return 'critical';
    if (past(r.warn)) worst = 'warning';
  }
  return worst;
}

/** As dashboards/html.ts formatValue(). */
export function format(metric, value) {
  if (value == null) return '—';
  if (metric === 'lid_open') return msg(value >= 0.5 ? 'value.open' : 'value.closed');
  const digits =
    metric === 'ph' || metric === 'battery_v'
      ? 2
      : metric === 'rssi_dbm' || Math.abs(value) >= 100
        ? 0
        : 1;
  return value.toFixed(digits);
}

export const locale = data.locale || 'en';
export const timeZone = data.timeZone || 'Africa/Nairobi';
const rel = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' });
const relUnits = [
  ['year', 31536000],
  ['month', 2592000],
  ['week', 604800],
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1],
];
export function ago(iso) {
  const s = Math.round((Date.parse(iso) - Date.now()) / 1000);
  for (const [unit, size] of relUnits)
    if (Math.abs(s) >= size || unit === 'second') return rel.format(Math.trunc(s / size), unit);
  return rel.format(0, 'second');
}
const fullDate = new Intl.DateTimeFormat(locale, {
  timeZone,
  dateStyle: 'medium',
  timeStyle: 'short',
});

export function timeEl(iso) {
  const t = document.createElement('time');
  t.setAttribute('datetime', iso);
  t.setAttribute('data-ago', '');
  t.title = fullDate.format(new Date(iso));
  t.textContent = ago(iso);
  return t;
}

export function stamp(el, iso) {
  el.replaceChildren(timeEl(iso));
}

// A tile's state in text (never colour only); offline or older than expected beats thresholds.
export const stateText = (hl) => msg('state.' + hl);
export function setTile(tile, cls, text) {
  tile.classList.remove('healthy', 'warning', 'critical', 'unknown', 'stale');
  tile.classList.add(cls);
  const state = tile.querySelector('.state');
  if (state) state.textContent = text;
}

/**
 * A message whose `{name}` placeholders are DOM nodes (a `<time>`, a link): the parts of the
 * text between them as text nodes, so nothing in a message is parsed as HTML.
 */
export function fill(key, nodes, vars) {
  const out = [];
  const text = msg(key, vars);
  let last = 0;
  for (const m of text.matchAll(/\{(\w+)\}/g)) {
    if (!(m[1] in nodes)) continue;
    out.push(text.slice(last, m.index), nodes[m[1]]);
    last = m.index + m[0].length;
  }
  out.push(text.slice(last));
  return out.filter((p) => p !== '');
}

export async function post(url, body, method = 'POST') {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
    body: JSON.stringify(body),
    credentials: 'same-origin',
  });
  const json = res.status === 204 ? {} : await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(json.text || json.message || 'HTTP ' + res.status);
  return json;
}
