// Live updates (Server-Sent Events): tiles, meters, fleet rows and alerts change as the
// server would render them, in the page's language.
import { addToSeries } from './chart.js';
import {
  data,
  fill,
  format,
  health,
  label,
  msg,
  setTile,
  stamp,
  stateText,
  timeEl,
} from './core.js';

function onReadings(readings) {
  for (const r of readings) {
    for (const [m, v] of Object.entries(r.values)) {
      for (const tile of document.querySelectorAll(
        '.tile[data-unit="' + r.unitId + '"][data-metric="' + m + '"]',
      )) {
        tile.querySelector('.value').textContent = format(m, v);
        const hl = health(m, v, r.unitId);
        setTile(tile, hl, stateText(hl));
        tile.dataset.ts = r.ts;
        tile.dataset.device = r.deviceId;
        const age = tile.querySelector('.age');
        if (age) stamp(age, r.ts);
      }
      for (const meter of document.querySelectorAll(
        'meter[data-unit="' + r.unitId + '"][data-metric="' + m + '"]',
      ))
        meter.value = v;
      for (const cell of document.querySelectorAll(
        'tr[data-device="' + r.deviceId + '"] td[data-metric="' + m + '"]',
      )) {
        const hl = health(m, v, r.unitId);
        cell.textContent =
          format(m, v) +
          ' ' +
          label(m)[1] +
          (m === 'battery_v'
            ? hl === 'critical'
              ? ' (' + msg('battery.veryLow') + ')'
              : hl === 'warning'
                ? ' (' + msg('battery.low') + ')'
                : ''
            : '');
        cell.className = hl;
      }
    }
    for (const el of document.querySelectorAll('[data-updated="' + r.unitId + '"]'))
      stamp(el, r.ts);
    if (data.unitId === r.unitId) addToSeries(r);
  }
}

function onDevice(d) {
  // A sensor that goes offline: its values on the page are no longer current.
  if (!d.online)
    for (const tile of document.querySelectorAll('.tile[data-device="' + d.id + '"]'))
      setTile(tile, 'stale', msg('state.sensorOffline'));
  const row = document.querySelector('tr[data-device="' + d.id + '"]');
  if (!row) return;
  const badge = row.querySelector('td[data-online] .badge');
  badge.className = 'badge ' + (d.online ? 'online' : 'offline');
  badge.textContent = msg(d.online ? 'state.online' : 'state.offline');
  stamp(row.querySelector('td[data-seen]'), d.at);
  const online = document.querySelectorAll('td[data-online] .badge.online').length;
  const all = document.querySelectorAll('td[data-online] .badge').length;
  const on = document.querySelector('[data-count-online]');
  const off = document.querySelector('[data-count-offline]');
  if (on) on.textContent = String(online);
  if (off) off.textContent = String(all - online);
}

function link(href, text) {
  const a = document.createElement('a');
  a.href = href;
  a.textContent = text;
  return a;
}

/** The value an alert opened on, with its unit (as dashboards/alert-pages.ts alertValue()). */
function alertValue(a) {
  if (a.value == null) return '';
  const m = (data.ruleMetric || {})[a.ruleId];
  if (m) return (format(m, a.value) + ' ' + label(m)[1]).trim();
  if (/\.device\.offline$/.test(a.ruleId))
    return msg('alert.minOffline', { minutes: Math.round(a.value) });
  if (/\.device\.cert_expiry$/.test(a.ruleId))
    return msg('cert.daysLeft', { days: Math.round(a.value) });
  return String(a.value);
}

// An alert added live is rendered as the server renders one: where, value with unit, guidance,
// and the acknowledge form (the submit handler above is delegated, so it works at once).
function onAlert(a) {
  const box = document.getElementById('alerts');
  if (!box || (box.dataset.unit && box.dataset.unit !== a.unitId)) return;
  if (data.deviceId && data.deviceId !== a.deviceId) return;
  const existing = box.querySelector('[data-alert-id="' + a.id + '"]');
  if (a.status === 'closed') {
    if (existing) existing.remove();
    return;
  }
  if (existing) {
    existing.className = ['alert', a.severity].join(' ');
    const b = existing.querySelector('.badge');
    if (b) {
      b.className = ['badge', a.severity].join(' ');
      b.textContent = msg('state.' + a.severity);
    }
    return;
  }
  box.querySelector('[data-alerts-empty]')?.remove();
  let list = box.querySelector('ul.alerts');
  if (!list) {
    list = document.createElement('ul');
    list.className = 'alerts';
    box.appendChild(list);
  }
  const li = document.createElement('li');
  li.className = ['alert', a.severity].join(' ');
  li.dataset.alertId = String(a.id);
  li.dataset.rule = a.ruleId;
  const strong = document.createElement('strong');
  strong.textContent = (data.titles || {})[a.ruleId] || a.title;
  const badge = document.createElement('span');
  badge.className = 'badge ' + a.severity;
  badge.textContent = msg('state.' + a.severity);
  const p = document.createElement('p');
  const kind = a.ruleId.split('.')[0];
  if (data.page === 'alerts') {
    p.append(
      kind === 'biodigester'
        ? link('/digesters/' + a.unitId, msg('kind.biodigester'))
        : link('/collection#unit-' + a.unitId, msg('kind.collection_point')),
      ' · ',
    );
  }
  p.append(
    ...fill('alert.sensor', {
      id: data.canFleet ? link('/fleet/' + a.deviceId, a.deviceId) : a.deviceId,
    }),
  );
  const value = alertValue(a);
  p.append(
    (value ? ' · ' + value : '') + ' · ',
    ...fill('alert.opened', { ago: timeEl(new Date().toISOString()) }),
  );
  const guidance = document.createElement('p');
  guidance.className = 'guidance';
  guidance.textContent = (data.guidance || {})[a.ruleId] || msg('alert.guidance.default');
  li.append(strong, ' ', badge, p, guidance);
  if (data.canAck) {
    const form = document.createElement('form');
    form.className = 'ack-form';
    form.dataset.alert = String(a.id);
    const field = document.createElement('label');
    const input = document.createElement('input');
    input.name = 'note';
    input.maxLength = 500;
    input.required = true;
    input.placeholder = msg('alert.notePlaceholder');
    field.append(msg('alert.note') + ' ', input);
    const button = document.createElement('button');
    button.type = 'submit';
    button.textContent = msg('alert.acknowledge');
    form.append(field, button);
    li.appendChild(form);
  }
  list.prepend(li);
}

/** Live updates over Server-Sent Events: readings, devices going on- or offline, alerts. */
export function startLive() {
  if (!data.page || typeof EventSource === 'undefined') return;
  const live = document.getElementById('live');
  const source = new EventSource('/api/v1/live');
  source.addEventListener('open', () => {
    live.hidden = false;
    live.classList.remove('off');
    live.classList.add('on');
  });
  source.addEventListener('error', () => {
    live.classList.remove('on');
    live.classList.add('off');
  });
  source.addEventListener('readings', (e) => onReadings(JSON.parse(e.data).readings));
  source.addEventListener('device', (e) => onDevice(JSON.parse(e.data).device));
  source.addEventListener('alert', (e) => onAlert(JSON.parse(e.data).alert));
}
