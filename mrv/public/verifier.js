// The verifier's report page: two production charts (hourly means of gas flow and methane over
// the report's period) drawn with the dashboards' chart library, uPlot, from the page data. The
// daily table beside them is their text alternative; without script the page stays complete.
(() => {
  'use strict';
  const el = document.getElementById('page-data');
  if (!el) return;
  const data = JSON.parse(el.textContent || '{}');
  const chart = data.chart;
  if (!chart || typeof uPlot === 'undefined') return;
  const locale = data.locale || 'en';
  const tick = new Intl.DateTimeFormat(locale, { timeZone: 'UTC', month: 'short', day: 'numeric' });
  const full = new Intl.DateTimeFormat(locale, {
    timeZone: 'UTC',
    month: 'short',
    day: 'numeric',
    hour: 'numeric',
    minute: '2-digit',
  });
  const number = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
  function draw(id, values, stroke) {
    const target = document.getElementById(id);
    if (!target) return;
    const width = Math.max(260, target.clientWidth);
    const opts = {
      width,
      height: Math.round(Math.min(300, Math.max(200, width * 0.4))),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'UTC'),
      series: [
        { value: (u, ts) => (ts == null ? '—' : full.format(new Date(ts * 1000))) },
        {
          stroke,
          width: 2,
          spanGaps: false,
          value: (u, v) => (v == null ? '—' : number.format(v)),
        },
      ],
      scales: { x: { time: true, range: () => [chart.from, chart.to] } },
      axes: [
        { values: (u, splits) => splits.map((s) => tick.format(new Date(s * 1000))) },
        { size: 50 },
      ],
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
    };
    target.replaceChildren();
    new uPlot(opts, [chart.t, values], target);
    target.dataset.points = String(chart.t.length);
  }
  function drawAll() {
    draw('chart-flow', chart.flow, '#146c4b');
    draw('chart-methane', chart.methane, '#8a5a00');
  }
  drawAll();
  let pending;
  window.addEventListener('resize', () => {
    clearTimeout(pending);
    pending = setTimeout(drawAll, 200);
  });
})();
