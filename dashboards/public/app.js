// Thamani dashboards: the small client script. The pages work without it (server-rendered);
// it adds the chart (uPlot), live updates (Server-Sent Events), acknowledging alerts and
// signing out. No framework, no build step: plain ES2020 that every current phone runs.
'use strict';

(function () {
  const data = JSON.parse(document.getElementById('page-data')?.textContent || '{}');
  const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') || '';
  const rules = data.rules || [];

  const labels = {
    temperature_c: ['Temperature', '°C'], ph: ['pH', ''], biogas_pressure_kpa: ['Gas pressure', 'kPa'], methane_pct: ['Methane', '%'],
    gas_flow_lpm: ['Gas flow', 'L/min'], slurry_level_pct: ['Slurry level', '%'], h2s_ppm: ['H₂S', 'ppm'], fill_level_pct: ['Fill level', '%'],
    weight_kg: ['Weight', 'kg'], lid_open: ['Lid', ''], battery_v: ['Battery', 'V'], rssi_dbm: ['Signal', 'dBm'],
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
    const digits = metric === 'ph' || metric === 'battery_v' ? 2 : metric === 'rssi_dbm' || Math.abs(value) >= 100 ? 0 : 1;
    return value.toFixed(digits);
  }

  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return 'just now';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return Math.floor(s / 86400) + ' d ago';
  }

  function refreshTimes() {
    for (const t of document.querySelectorAll('time[data-ago]')) t.textContent = ago(Date.now() - Date.parse(t.getAttribute('datetime')));
  }
  setInterval(refreshTimes, 30000);

  function stamp(el, iso) {
    el.innerHTML = '';
    const t = document.createElement('time');
    t.setAttribute('datetime', iso);
    t.setAttribute('data-ago', '');
    t.textContent = ago(Date.now() - Date.parse(iso));
    el.appendChild(t);
  }

  async function post(url, body) {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf }, body: JSON.stringify(body), credentials: 'same-origin' });
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
        p.textContent = 'Acknowledged by ' + r.acknowledgedBy + ': “' + r.note + '”';
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

  function drawChart() {
    const el = document.getElementById('chart');
    if (!el || !series || typeof uPlot === 'undefined') return;
    const [name, unit] = labels[metric] || [metric, ''];
    document.getElementById('chart-title').textContent = name + (unit ? ' (' + unit + ')' : '') + ' · ' + range;
    const width = Math.max(280, el.clientWidth);
    const opts = {
      width,
      height: Math.round(Math.min(320, Math.max(200, width * 0.5))),
      series: [
        {},
        { label: 'avg', stroke: '#1b7f5b', width: 2, spanGaps: false },
        { label: 'min', stroke: '#9cc9b5', width: 1 },
        { label: 'max', stroke: '#9cc9b5', width: 1 },
      ],
      bands: [{ series: [3, 2], fill: 'rgba(27,127,91,0.12)' }],
      // The whole asked range, even where there is no data yet (a new digester, an outage).
      scales: { x: { time: true, range: () => [Date.parse(series.from) / 1000, Date.parse(series.to) / 1000] } },
      axes: [{}, { size: 50 }],
      legend: { show: width > 500 },
      cursor: { drag: { x: false, y: false } },
    };
    if (chart) chart.destroy();
    chart = new uPlot(opts, chartData(), el);
    el.dataset.points = String(series.t.length);
  }

  async function loadSeries() {
    const el = document.getElementById('chart');
    if (!el) return;
    const res = await fetch('/api/v1/units/' + el.dataset.unit + '/series?range=' + range + '&metrics=' + data.metrics.join(','), { credentials: 'same-origin' });
    if (!res.ok) {
      document.getElementById('chart-note').textContent = 'Could not load the chart (HTTP ' + res.status + ').';
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
        s.avg.push(null); s.min.push(null); s.max.push(null); s.count.push(0);
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
    if (chart) chart.setData(chartData());
  }

  if (document.getElementById('chart')) {
    for (const b of document.querySelectorAll('[data-range]')) {
      b.addEventListener('click', () => {
        range = b.dataset.range;
        for (const o of document.querySelectorAll('[data-range]')) o.setAttribute('aria-pressed', String(o === b));
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
        for (const tile of document.querySelectorAll('.tile[data-unit="' + r.unitId + '"][data-metric="' + m + '"]')) {
          tile.querySelector('.value').textContent = format(m, v);
          tile.classList.remove('healthy', 'warning', 'critical', 'unknown');
          tile.classList.add(health(m, v));
        }
        for (const meter of document.querySelectorAll('meter[data-unit="' + r.unitId + '"][data-metric="' + m + '"]')) meter.value = v;
        for (const cell of document.querySelectorAll('tr[data-device="' + r.deviceId + '"] td[data-metric="' + m + '"]')) {
          cell.textContent = format(m, v) + ' ' + (labels[m] || ['', ''])[1];
          cell.className = health(m, v);
        }
      }
      for (const el of document.querySelectorAll('[data-updated="' + r.unitId + '"]')) stamp(el, r.ts);
      if (data.unitId === r.unitId) addToSeries(r);
    }
  }

  function onDevice(d) {
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

  function onAlert(a) {
    const box = document.getElementById('alerts');
    if (!box || (box.dataset.unit && box.dataset.unit !== a.unitId)) return;
    const existing = box.querySelector('[data-alert-id="' + a.id + '"]');
    if (a.status === 'closed') {
      if (existing) existing.remove();
      return;
    }
    if (existing) {
      existing.className = 'alert ' + a.severity;
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
    const strong = document.createElement('strong');
    strong.textContent = a.title;
    const p = document.createElement('p');
    p.textContent = 'device ' + a.deviceId + (a.value != null ? ' · ' + a.value : '') + ' · opened just now (reload to acknowledge)';
    li.append(strong, ' ', p);
    list.prepend(li);
  }

  if (data.page && typeof EventSource !== 'undefined') {
    const live = document.getElementById('live');
    const source = new EventSource('/api/v1/live');
    source.addEventListener('open', () => { live.hidden = false; live.className = 'live on'; });
    source.addEventListener('error', () => { live.className = 'live off'; });
    source.addEventListener('readings', (e) => onReadings(JSON.parse(e.data).readings));
    source.addEventListener('device', (e) => onDevice(JSON.parse(e.data).device));
    source.addEventListener('alert', (e) => onAlert(JSON.parse(e.data).alert));
  }
})();
