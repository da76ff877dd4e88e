// The digester page's chart (uPlot): hourly or daily averages with a min–max band, threshold
// lines, axis labels in the configured zone and the page's language, and a text alternative.
import { data, format, label, locale, msg, rulesFor, timeZone } from './core.js';

let chart;
let series; // the JSON of /series for the shown range
let metric = (data.metrics || [])[0];
let range = '24h';
const rangeName = () => msg('range.' + range);

function chartData() {
  const s = series.series[metric];
  return [series.t, s.avg, s.min, s.max];
}

/** Warning and critical thresholds of the shown metric's enabled rules for this unit, ascending. */
function thresholds() {
  const out = [];
  for (const r of rulesFor(data.unitId)) {
    if (r.metric !== metric || r.enabled === false) continue;
    out.push({ v: r.warn, level: 'warning' });
    if (r.critical != null) out.push({ v: r.critical, level: 'critical' });
  }
  return out.sort((a, b) => a.v - b.v);
}

// Axis ticks and the legend in the configured zone and the reader's language (uPlot's own are
// US-style in the browser's zone).
const tickHour = new Intl.DateTimeFormat(locale, {
  timeZone,
  hour: 'numeric',
  minute: '2-digit',
});
const tickDay = new Intl.DateTimeFormat(locale, { timeZone, month: 'short', day: 'numeric' });
const tickMonth = new Intl.DateTimeFormat(locale, { timeZone, month: 'short', year: 'numeric' });
const rowTime = new Intl.DateTimeFormat(locale, {
  timeZone,
  weekday: 'short',
  month: 'short',
  day: 'numeric',
  hour: 'numeric',
  minute: '2-digit',
});
function tick(ts, incr) {
  const d = new Date(ts * 1000);
  return (incr >= 28 * 86400 ? tickMonth : incr >= 86400 ? tickDay : tickHour).format(d);
}

function num(v) {
  return v == null ? '—' : format(metric, v);
}

/** The chart's text alternative: a summary sentence and the newest buckets in a table. */
function describeChart() {
  const [name, unit] = label(metric);
  const s = series.series[metric];
  const values = s.avg.filter((v) => v != null);
  const caption = document.getElementById('chart-summary');
  const u = unit ? ' ' + unit : '';
  if (values.length === 0) caption.textContent = msg('chart.empty', { name, range: rangeName() });
  else {
    const min = Math.min(...s.min.filter((v) => v != null));
    const max = Math.max(...s.max.filter((v) => v != null));
    const th = thresholds();
    caption.textContent =
      msg(series.bucket === 'hour' ? 'chart.summaryHourly' : 'chart.summaryDaily', {
        name,
        range: rangeName(),
        count: values.length,
        min: num(min) + u,
        max: num(max) + u,
        latest: num(values[values.length - 1]) + u,
      }) +
      (th.length
        ? ' ' +
          msg('chart.thresholds', {
            list: th.map((t) => msg('state.' + t.level) + ' ' + num(t.v) + u).join(', '),
          })
        : '');
  }
  const body = document.querySelector('#chart-table tbody');
  const rows = [];
  for (let i = series.t.length - 1; i >= 0 && rows.length < 48; i--) {
    if (s.avg[i] == null) continue;
    const tr = document.createElement('tr');
    for (const text of [
      rowTime.format(new Date(series.t[i] * 1000)),
      num(s.avg[i]) + u,
      num(s.min[i]) + u,
      num(s.max[i]) + u,
    ]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.appendChild(td);
    }
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

function drawChart() {
  const el = document.getElementById('chart');
  if (!el || !series || typeof uPlot === 'undefined') return;
  const [name, unit] = label(metric);
  document.getElementById('chart-title').textContent =
    name + (unit ? ' (' + unit + ')' : '') + ' · ' + rangeName();
  for (const b of document.querySelectorAll('button.tile'))
    b.setAttribute('aria-pressed', String(b.dataset.metric === metric));
  const th = thresholds();
  const width = Math.max(260, el.clientWidth);
  const opts = {
    width,
    height: Math.round(Math.min(320, Math.max(200, width * 0.5))),
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), timeZone),
    series: [
      {
        label: msg('chart.time'),
        value: (u, ts) => (ts == null ? '—' : rowTime.format(new Date(ts * 1000))),
      },
      {
        label: msg('chart.average'),
        stroke: '#146c4b',
        width: 2,
        spanGaps: false,
        value: (u, v) => num(v),
      },
      { label: msg('chart.min'), stroke: '#5d8f79', width: 1, value: (u, v) => num(v) },
      { label: msg('chart.max'), stroke: '#5d8f79', width: 1, value: (u, v) => num(v) },
    ],
    bands: [{ series: [3, 2], fill: 'rgba(20,108,75,0.12)' }],
    // The whole asked range, even where there is no data yet (a new digester, an outage); the
    // y range keeps the thresholds in view.
    scales: {
      x: {
        time: true,
        range: () => [Date.parse(series.from) / 1000, Date.parse(series.to) / 1000],
      },
      y: {
        range: (u, min, max) => {
          const lo = Math.min(min ?? Infinity, ...th.map((t) => t.v));
          const hi = Math.max(max ?? -Infinity, ...th.map((t) => t.v));
          if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
          const pad = (hi - lo) * 0.08 || 1;
          return [lo - pad, hi + pad];
        },
      },
    },
    axes: [
      { values: (u, splits, axisIdx, space, incr) => splits.map((s) => tick(s, incr)) },
      { size: 50 },
    ],
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
    hooks: {
      // Dashed threshold lines: amber for warning, red for critical.
      draw: [
        (u) => {
          const ctx = u.ctx;
          ctx.save();
          ctx.lineWidth = 1.5 * window.devicePixelRatio;
          ctx.setLineDash([6 * window.devicePixelRatio, 4 * window.devicePixelRatio]);
          for (const t of th) {
            const y = Math.round(u.valToPos(t.v, 'y', true));
            ctx.strokeStyle = t.level === 'critical' ? '#a11d24' : '#b86e00';
            ctx.beginPath();
            ctx.moveTo(u.bbox.left, y);
            ctx.lineTo(u.bbox.left + u.bbox.width, y);
            ctx.stroke();
          }
          ctx.restore();
        },
      ],
    },
  };
  if (chart) chart.destroy();
  chart = new uPlot(opts, chartData(), el);
  el.dataset.points = String(series.t.length);
  el.dataset.thresholds = th.map((t) => t.v).join(',');
  describeChart();
}
async function loadSeries() {
  const el = document.getElementById('chart');
  if (!el) return;
  // A unit's chart, or the one whose element names its own series (a device's battery and signal).
  const res = await fetch(
    (el.dataset.series || '/api/v1/units/' + el.dataset.unit + '/series') +
      '?range=' +
      range +
      '&metrics=' +
      data.metrics.join(','),
    { credentials: 'same-origin' },
  );
  if (!res.ok) {
    document.getElementById('chart-note').textContent = msg('chart.failed', { status: res.status });
    return;
  }
  series = await res.json();
  drawChart();
}

const zoneParts = new Intl.DateTimeFormat('en-CA', {
  timeZone,
  hourCycle: 'h23',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});
/** The instant (ms) of the zone's midnight that starts the day holding `ms`. */
function zoneDayStart(ms) {
  const p = Object.fromEntries(zoneParts.formatToParts(ms).map((x) => [x.type, Number(x.value)]));
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  const offset = wall - Math.floor(ms / 1000) * 1000;
  return Date.UTC(p.year, p.month - 1, p.day) - offset;
}

// A live reading updates the newest bucket the way the rollup will (running min, max, mean).
export function addToSeries(reading) {
  if (!series) return;
  const at = Date.parse(reading.ts);
  // A day bucket is the zone's calendar day (as the server's), an hour is an hour anywhere.
  const t = series.bucket === 'hour' ? Math.floor(at / 3600000) * 3600 : zoneDayStart(at) / 1000;
  let i = series.t.indexOf(t);
  if (i < 0) {
    if (series.t.length > 0 && t < series.t[series.t.length - 1]) return;
    series.t.push(t);
    for (const m of Object.keys(series.series)) {
      const s = series.series[m];
      s.avg.push(null);
      s.min.push(null);
      s.max.push(null);
      s.count.push(0);
    }
    i = series.t.length - 1;
  }
  for (const [m, v] of Object.entries(reading.values)) {
    const s = series.series[m];
    if (!s) continue;
    const n = s.count[i] || 0;
    s.avg[i] = n === 0 ? v : (s.avg[i] * n + v) / (n + 1);
    s.min[i] = n === 0 ? v : Math.min(s.min[i], v);
    s.max[i] = n === 0 ? v : Math.max(s.max[i], v);
    s.count[i] = n + 1;
  }
  if (chart) {
    chart.setData(chartData());
    describeChart();
  }
}

/** The digester page's chart: ranges, the metric chosen by its tile, redrawn on resize. */
export function startChart() {
  if (!document.getElementById('chart')) return;
  for (const b of document.querySelectorAll('[data-range]')) {
    b.addEventListener('click', () => {
      range = b.dataset.range;
      for (const o of document.querySelectorAll('[data-range]'))
        o.setAttribute('aria-pressed', String(o === b));
      loadSeries();
    });
  }
  for (const b of document.querySelectorAll('button.tile')) {
    b.addEventListener('click', () => {
      metric = b.dataset.metric;
      drawChart();
    });
  }
  let resize;
  window.addEventListener('resize', () => {
    clearTimeout(resize);
    resize = setTimeout(drawChart, 200);
  });
  loadSeries();
}
