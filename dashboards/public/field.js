// Thamani field pages (field/): the feed-and-gas chart (uPlot bars) and the forms of the feeding
// log and of marking a collection point collected. The forms go to the JSON API with the
// session's CSRF token; times typed in a datetime-local field are read in the configured zone
// (page data), never the phone's. Plain ES2020, no build step, like app.js.
'use strict';

(function () {
  const page = JSON.parse(document.getElementById('page-data')?.textContent || '{}');
  const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') || '';
  const text = page.field || {};
  const timeZone = page.timeZone || 'Africa/Nairobi';
  const locale = page.locale || 'en';

  /** Offset of the zone from UTC at an instant (ms): its wall clock read back as UTC. */
  function zoneOffset(ms) {
    const p = {};
    for (const x of new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    }).formatToParts(new Date(ms)))
      p[x.type] = x.value;
    return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - ms;
  }

  /** "2026-11-30T14:05" on the zone's clock → an ISO instant; empty → undefined (the server's now). */
  function instantOf(wall) {
    if (!wall) return undefined;
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(wall);
    if (!m) return undefined;
    const asUtc = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
    let t = asUtc - zoneOffset(asUtc);
    t = asUtc - zoneOffset(t); // once more across an offset change
    return new Date(t).toISOString();
  }

  async function send(method, url, body) {
    const res = await fetch(url, {
      method,
      headers: Object.assign(
        { 'x-csrf-token': csrf },
        body ? { 'content-type': 'application/json' } : {},
      ),
      body: body ? JSON.stringify(body) : undefined,
      credentials: 'same-origin',
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(json.text || json.message || 'HTTP ' + res.status);
    return json;
  }

  function say(form, message) {
    const status =
      form.querySelector('.form-status') || form.parentElement.querySelector('.form-status');
    if (status) status.textContent = message;
  }

  function failed(form, err) {
    say(form, (text.failed || '{message}').replace('{message}', err.message));
  }

  // Record or correct a feeding; mark a point collected. The page reloads to show the result.
  document.addEventListener('submit', (e) => {
    const form = e.target.closest('form.field-form');
    if (!form) return;
    e.preventDefault();
    const value = (name) => form.querySelector('[name=' + name + ']')?.value ?? '';
    const number = (name) => (value(name) === '' ? NaN : Number(value(name)));
    const at = instantOf(value('at'));
    const note = value('note').trim();
    let request;
    if (form.dataset.kind === 'collection')
      request = [
        'POST',
        '/api/v1/units/' + form.dataset.unit + '/collections',
        { weightKg: number('weightKg'), collectedAt: at, note: note || null },
      ];
    else if (form.dataset.feeding)
      request = [
        'PATCH',
        '/api/v1/feedings/' + form.dataset.feeding,
        { kg: number('kg'), fedAt: at, note: note || null },
      ];
    else
      request = [
        'POST',
        '/api/v1/units/' + form.dataset.unit + '/feedings',
        { kg: number('kg'), fedAt: at, note: note || null },
      ];
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    say(form, text.sending || '…');
    send(request[0], request[1], request[2])
      .then(() => {
        say(form, text.saved || 'Saved.');
        location.reload();
      })
      .catch((err) => {
        button.disabled = false;
        failed(form, err);
      });
  });

  document.addEventListener('click', (e) => {
    const button = e.target.closest('button[data-delete-feeding]');
    if (!button) return;
    if (!window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    send('DELETE', '/api/v1/feedings/' + button.dataset.deleteFeeding)
      .then(() => location.reload())
      .catch((err) => {
        button.disabled = false;
        failed(button.closest('details').querySelector('form'), err);
      });
  });

  // ---- Food fed beside gas produced, per day: two sets of bars on two axes. ----
  const dataEl = document.getElementById('feed-data');
  const el = document.getElementById('feed-chart');
  if (!dataEl || !el || typeof uPlot === 'undefined') return;
  const feed = JSON.parse(dataEl.textContent || '{}');
  const days = feed.days || [];
  // Noon of each local day, so that a bar sits on its day whatever the zone.
  const xs = days.map(
    (d) => (Date.parse(d.day + 'T12:00:00Z') - zoneOffset(Date.parse(d.day + 'T12:00:00Z'))) / 1000,
  );
  const dayFmt = new Intl.DateTimeFormat(locale, { timeZone, month: 'short', day: 'numeric' });
  const num = new Intl.NumberFormat(locale, { maximumFractionDigits: 2 });
  function draw() {
    const width = Math.max(260, el.clientWidth);
    const bars = uPlot.paths && uPlot.paths.bars;
    const opts = {
      width,
      height: Math.round(Math.min(280, Math.max(180, width * 0.45))),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), timeZone),
      series: [
        { value: (u, ts) => (ts == null ? '—' : dayFmt.format(new Date(ts * 1000))) },
        {
          label: feed.labels.kg,
          scale: 'kg',
          stroke: '#7a4b00',
          fill: 'rgba(184,110,0,0.55)',
          paths: bars ? bars({ size: [0.38, 40], align: -1 }) : undefined,
          points: { show: false },
          value: (u, v) => (v == null ? '—' : num.format(v)),
        },
        {
          label: feed.labels.m3,
          scale: 'm3',
          stroke: '#146c4b',
          fill: 'rgba(20,108,75,0.55)',
          paths: bars ? bars({ size: [0.38, 40], align: 1 }) : undefined,
          points: { show: false },
          value: (u, v) => (v == null ? '—' : num.format(v)),
        },
      ],
      scales: {
        x: {
          time: true,
          range: () => (xs.length ? [xs[0] - 43200, xs[xs.length - 1] + 43200] : [0, 1]),
        },
        kg: { range: (u, min, max) => [0, Math.max(1, max || 0) * 1.1] },
        m3: { range: (u, min, max) => [0, Math.max(0.1, max || 0) * 1.1] },
      },
      axes: [
        { values: (u, splits) => splits.map((s) => dayFmt.format(new Date(s * 1000))) },
        { scale: 'kg', size: 48 },
        { scale: 'm3', side: 1, size: 48, grid: { show: false } },
      ],
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
    };
    el.replaceChildren();
    new uPlot(opts, [xs, days.map((d) => d.kg), days.map((d) => d.m3)], el);
    el.dataset.kg = days.map((d) => d.kg).join(',');
  }
  draw();
  let resize;
  window.addEventListener('resize', () => {
    clearTimeout(resize);
    resize = setTimeout(draw, 200);
  });
})();
