// Thamani dashboards: the small client script. The pages work without it (server-rendered);
// it adds the chart (uPlot), live updates (Server-Sent Events), acknowledging alerts and
// signing out. No framework, no build step: plain ES2020 that every current phone runs.
'use strict';

(function () {
  const data = JSON.parse(document.getElementById('page-data')?.textContent || '{}');
  const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') || '';
  const rules = data.rules || [];

  const labels = {
    temperature_c: ['Temperature', '°C'],
    ph: ['pH', ''],
    biogas_pressure_kpa: ['Gas pressure', 'kPa'],
    methane_pct: ['Methane', '%'],
    gas_flow_lpm: ['Gas flow', 'L/min'],
    slurry_level_pct: ['Slurry level', '%'],
    h2s_ppm: ['H₂S', 'ppm'],
    fill_level_pct: ['Fill level', '%'],
    weight_kg: ['Weight', 'kg'],
    lid_open: ['Lid', ''],
    battery_v: ['Battery', 'V'],
    rssi_dbm: ['Signal', 'dBm'],
  };

  // Same rules as dashboards/alert-rules.ts healthOf(): the worst severity any rule gives a value.
  function health(metric, value) {
    if (value == null) return 'unknown';
    let worst = 'healthy';
    for (const r of rules) {
      if (r.metric !== metric || r.enabled === false) continue;
      const low = r.condition === 'below' || r.condition === 'cert_expiry_days';
      const past = (t) => (low ? value < t : value > t);
      if (r.critical != null && past(r.critical)) return 'critical';
      if (past(r.warn)) worst = 'warning';
    }
    return worst;
  }

  function format(metric, value) {
    if (value == null) return '—';
    if (metric === 'lid_open') return value >= 0.5 ? 'open' : 'closed';
    const digits =
      metric === 'ph' || metric === 'battery_v'
        ? 2
        : metric === 'rssi_dbm' || Math.abs(value) >= 100
          ? 0
          : 1;
    return value.toFixed(digits);
  }

  // Dates as the server writes them: Intl, the reader's language, the configured zone (page data).
  const locale = data.locale || 'en';
  const timeZone = data.timeZone || 'Africa/Nairobi';
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
  function ago(iso) {
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

  function timeEl(iso) {
    const t = document.createElement('time');
    t.setAttribute('datetime', iso);
    t.setAttribute('data-ago', '');
    t.title = fullDate.format(new Date(iso));
    t.textContent = ago(iso);
    return t;
  }

  // A tile's state in text (never colour only); offline or older than expected beats thresholds.
  const stateText = { healthy: 'ok', warning: 'warning', critical: 'critical', unknown: 'no data' };
  function setTile(tile, cls, text) {
    tile.classList.remove('healthy', 'warning', 'critical', 'unknown', 'stale');
    tile.classList.add(cls);
    const state = tile.querySelector('.state');
    if (state) state.textContent = text;
  }

  function refreshTimes() {
    for (const t of document.querySelectorAll('time[data-ago]'))
      t.textContent = ago(t.getAttribute('datetime'));
    // A value that stops being refreshed goes stale while the page is open.
    if (data.staleMs) {
      for (const tile of document.querySelectorAll('.tile[data-ts]')) {
        if (
          Date.now() - Date.parse(tile.dataset.ts) > data.staleMs &&
          !tile.classList.contains('stale')
        )
          setTile(tile, 'stale', 'stale');
      }
    }
  }
  setInterval(refreshTimes, 30000);

  function stamp(el, iso) {
    el.replaceChildren(timeEl(iso));
  }

  async function post(url, body) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify(body),
      credentials: 'same-origin',
    });
    const json = res.status === 204 ? {} : await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(json.message || 'HTTP ' + res.status);
    return json;
  }

  // Sign out (the API wants the CSRF token, which a plain link cannot send).
  for (const a of document.querySelectorAll('[data-logout]')) {
    a.addEventListener('click', (e) => {
      e.preventDefault();
      post('/api/v1/auth/logout', {}).finally(() => location.assign('/login'));
    });
  }

  // Acknowledge an alert with a note.
  document.addEventListener('submit', (e) => {
    const form = e.target.closest('form.ack-form');
    if (!form) return;
    e.preventDefault();
    const note = form.querySelector('input[name=note]').value;
    const button = form.querySelector('button');
    button.disabled = true;
    post('/api/v1/alerts/' + form.dataset.alert + '/ack', { note })
      .then((r) => {
        const p = document.createElement('p');
        p.className = 'ack';
        p.append(
          'Acknowledged by ' + r.acknowledgedBy + ' ',
          timeEl(new Date().toISOString()),
          ': “' + r.note + '”',
        );
        form.replaceWith(p);
      })
      .catch((err) => {
        button.disabled = false;
        alert('Could not acknowledge: ' + err.message);
      });
  });

  // ---- Chart (digester page) ----
  let chart;
  let series; // the JSON of /series for the shown range
  let metric = (data.metrics || [])[0];
  let range = '24h';

  function chartData() {
    const s = series.series[metric];
    return [series.t, s.avg, s.min, s.max];
  }

  /** Warning and critical thresholds of the shown metric's enabled rules, ascending. */
  function thresholds() {
    const out = [];
    for (const r of rules) {
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
    const [name, unit] = labels[metric] || [metric, ''];
    const s = series.series[metric];
    const values = s.avg.filter((v) => v != null);
    const caption = document.getElementById('chart-summary');
    const u = unit ? ' ' + unit : '';
    if (values.length === 0) caption.textContent = name + ', ' + range + ': no data in this range.';
    else {
      const min = Math.min(...s.min.filter((v) => v != null));
      const max = Math.max(...s.max.filter((v) => v != null));
      const th = thresholds();
      caption.textContent =
        name +
        ', ' +
        range +
        ': ' +
        values.length +
        ' ' +
        (series.bucket === 'hour' ? 'hourly' : 'daily') +
        ' averages from ' +
        num(min) +
        u +
        ' to ' +
        num(max) +
        u +
        ', latest ' +
        num(values[values.length - 1]) +
        u +
        '.' +
        (th.length
          ? ' Thresholds: ' + th.map((t) => t.level + ' ' + num(t.v) + u).join(', ') + '.'
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
    const [name, unit] = labels[metric] || [metric, ''];
    document.getElementById('chart-title').textContent =
      name + (unit ? ' (' + unit + ')' : '') + ' · ' + range;
    for (const b of document.querySelectorAll('button.tile'))
      b.setAttribute('aria-pressed', String(b.dataset.metric === metric));
    const th = thresholds();
    const width = Math.max(260, el.clientWidth);
    const opts = {
      width,
      height: Math.round(Math.min(320, Math.max(200, width * 0.5))),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), timeZone),
      series: [
        { value: (u, ts) => (ts == null ? '—' : rowTime.format(new Date(ts * 1000))) },
        { label: 'avg', stroke: '#146c4b', width: 2, spanGaps: false, value: (u, v) => num(v) },
        { label: 'min', stroke: '#5d8f79', width: 1, value: (u, v) => num(v) },
        { label: 'max', stroke: '#5d8f79', width: 1, value: (u, v) => num(v) },
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
      document.getElementById('chart-note').textContent =
        'Could not load the chart (HTTP ' + res.status + ').';
      return;
    }
    series = await res.json();
    drawChart();
  }

  // A live reading updates the newest bucket the way the rollup will (running min, max, mean).
  function addToSeries(reading) {
    if (!series) return;
    const step = series.bucket === 'hour' ? 3600 : 86400;
    const t = Math.floor(Date.parse(reading.ts) / 1000 / step) * step;
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

  if (document.getElementById('chart')) {
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

  // ---- Live updates ----
  function onReadings(readings) {
    for (const r of readings) {
      for (const [m, v] of Object.entries(r.values)) {
        for (const tile of document.querySelectorAll(
          '.tile[data-unit="' + r.unitId + '"][data-metric="' + m + '"]',
        )) {
          tile.querySelector('.value').textContent = format(m, v);
          const hl = health(m, v);
          setTile(tile, hl, stateText[hl]);
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
          const hl = health(m, v);
          cell.textContent =
            format(m, v) +
            ' ' +
            (labels[m] || ['', ''])[1] +
            (m === 'battery_v'
              ? hl === 'critical'
                ? ' (very low)'
                : hl === 'warning'
                  ? ' (low)'
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
        setTile(tile, 'stale', 'sensor offline');
    const row = document.querySelector('tr[data-device="' + d.id + '"]');
    if (!row) return;
    const badge = row.querySelector('td[data-online] .badge');
    badge.className = 'badge ' + (d.online ? 'online' : 'offline');
    badge.textContent = d.online ? 'online' : 'offline';
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
    if (m) return (format(m, a.value) + ' ' + ((labels[m] || ['', ''])[1] || '')).trim();
    if (/\.device\.offline$/.test(a.ruleId)) return Math.round(a.value) + ' min offline';
    if (/\.device\.cert_expiry$/.test(a.ruleId)) return Math.round(a.value) + ' days left';
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
      existing.className = 'alert ' + a.severity;
      const b = existing.querySelector('.badge');
      if (b) {
        b.className = 'badge ' + a.severity;
        b.textContent = a.severity;
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
    li.className = 'alert ' + a.severity;
    li.dataset.alertId = String(a.id);
    li.dataset.rule = a.ruleId;
    const strong = document.createElement('strong');
    strong.textContent = a.title;
    const badge = document.createElement('span');
    badge.className = 'badge ' + a.severity;
    badge.textContent = a.severity;
    const p = document.createElement('p');
    const kind = a.ruleId.split('.')[0];
    if (data.page === 'alerts') {
      p.append(
        kind === 'biodigester'
          ? link('/digesters/' + a.unitId, 'digester')
          : link('/collection#unit-' + a.unitId, 'collection point'),
        ' · ',
      );
    }
    p.append('sensor ', data.canFleet ? link('/fleet/' + a.deviceId, a.deviceId) : a.deviceId);
    const value = alertValue(a);
    p.append((value ? ' · ' + value : '') + ' · opened ', timeEl(new Date().toISOString()));
    const guidance = document.createElement('p');
    guidance.className = 'guidance';
    guidance.textContent =
      (data.guidance || {})[a.ruleId] ||
      'Check the device and its readings; acknowledge with a note of what was done.';
    li.append(strong, ' ', badge, p, guidance);
    if (data.canAck) {
      const form = document.createElement('form');
      form.className = 'ack-form';
      form.dataset.alert = String(a.id);
      const label = document.createElement('label');
      const input = document.createElement('input');
      input.name = 'note';
      input.maxLength = 500;
      input.required = true;
      input.placeholder = 'What was done?';
      label.append('Note ', input);
      const button = document.createElement('button');
      button.type = 'submit';
      button.textContent = 'Acknowledge';
      form.append(label, button);
      li.appendChild(form);
    }
    list.prepend(li);
  }

  if (data.page && typeof EventSource !== 'undefined') {
    const live = document.getElementById('live');
    const source = new EventSource('/api/v1/live');
    source.addEventListener('open', () => {
      live.hidden = false;
      live.className = 'live on';
    });
    source.addEventListener('error', () => {
      live.className = 'live off';
    });
    source.addEventListener('readings', (e) => onReadings(JSON.parse(e.data).readings));
    source.addEventListener('device', (e) => onDevice(JSON.parse(e.data).device));
    source.addEventListener('alert', (e) => onAlert(JSON.parse(e.data).alert));
  }
})();
