// layer: the verifier's HTML views; every dynamic value escaped, as every page the HTTP layer serves
import { escapeHtml as h } from '../api/escape-html.ts';
import type { Formatter } from '../dashboards/format-fns.ts';
import type { MessageKey } from '../i18n/index.ts';
import type { ReportDocument } from './mrv-report-fns.ts';
import type { HourBucket, VerifierTokenInfo, VisibleReport } from './verifier-repo.ts';

/**
 * The verifier's pages: sign-in with a token, the reports it opens, one report with its
 * production charts and downloads. No inline script or style (the CSP forbids both): chart data
 * travels as JSON in a `<script type="application/json">` block that /verifier/assets/verifier.js
 * draws with the dashboards' chart library (uPlot).
 */

export const VERIFIER_ASSETS = '/verifier/assets';

/** A number in the reader's language; the exact value stays in `<data value>` for machines. */
export function num(f: Formatter, v: number, digits = 2): string {
  return new Intl.NumberFormat(f.locale, { maximumFractionDigits: digits }).format(v);
}

export function dataNum(f: Formatter, field: string, v: number, digits = 2): string {
  return `<data value="${h(String(v))}" data-field="${h(field)}">${h(num(f, v, digits))}</data>`;
}

/** A report's period as the reader reads it: "October 2026" for a calendar month (UTC). */
export function periodLabel(f: Formatter, start: Date, end: Date): string {
  const month = new Intl.DateTimeFormat(f.locale, {
    timeZone: 'UTC',
    month: 'long',
    year: 'numeric',
  });
  const isMonth =
    start.getUTCDate() === 1 &&
    start.getUTCHours() === 0 &&
    end.getTime() === Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1);
  const day = new Intl.DateTimeFormat(f.locale, { timeZone: 'UTC', dateStyle: 'medium' });
  return isMonth ? month.format(start) : `${day.format(start)} – ${day.format(end)}`;
}

export function verifierLayout(o: {
  f: Formatter;
  title: string;
  body: string;
  signedIn: boolean;
  data?: Record<string, unknown>;
  csrf?: string;
}): string {
  const t = o.f.t;
  const data = JSON.stringify({ ...o.data, locale: o.f.locale }).replace(/</g, '\\u003c');
  const signOut = o.signedIn
    ? `<form method="post" action="/verifier/signout" class="signout"><button type="submit">${h(t('mrv.signOut'))}</button></form>`
    : '';
  return `<!doctype html><html lang="${o.f.lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${h(o.title)} · ${h(t('mrv.brand'))}</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/vendor/uPlot.min.css"><link rel="stylesheet" href="/assets/app.css"><link rel="stylesheet" href="${VERIFIER_ASSETS}/verifier.css"></head>
<body class="verifier"><a class="skip" href="#main">${h(t('layout.skip'))}</a><header><a class="brand" href="/verifier">${h(t('mrv.brand'))}</a>${signOut}</header>
<main id="main"><h1>${h(o.title)}</h1>${o.body}</main>
<script type="application/json" id="page-data">${data}</script><script src="/assets/vendor/uPlot.iife.min.js" defer></script><script src="${VERIFIER_ASSETS}/verifier.js" defer></script></body></html>`;
}

export function signInPage(f: Formatter, refused = false): string {
  const t = f.t;
  return verifierLayout({
    f,
    title: t('mrv.signIn.title'),
    signedIn: false,
    body: `${refused ? `<p class="error" role="alert">${h(t('mrv.signIn.refused'))}</p>` : ''}<p>${h(t('mrv.signIn.intro'))}</p>
<form method="post" action="/verifier/session" class="token-form"><label for="token">${h(t('mrv.signIn.token'))}</label>
<input id="token" name="token" type="password" autocomplete="off" required maxlength="200"><button type="submit">${h(t('mrv.signIn.submit'))}</button></form>`,
  });
}

export function notFoundPage(f: Formatter): string {
  return verifierLayout({
    f,
    title: f.t('mrv.list.title'),
    signedIn: true,
    body: `<p>${h(f.t('mrv.error.notFound'))}</p><p><a href="/verifier">${h(f.t('mrv.back'))}</a></p>`,
  });
}

export function reportListPage(
  f: Formatter,
  token: VerifierTokenInfo,
  reports: readonly VisibleReport[],
): string {
  const t = f.t;
  const day = new Intl.DateTimeFormat(f.locale, { timeZone: 'UTC', dateStyle: 'medium' });
  const lastDay = new Date(token.periodTo.getTime() - 1);
  const scope = t('mrv.list.scope', {
    name: token.name,
    from: day.format(token.periodFrom),
    to: day.format(lastDay),
    expires: f.dateTime(token.expiresAt),
  });
  const head = (['digester', 'site', 'period', 'version', 'issued', 'readings', 'root'] as const)
    .map((c) => `<th scope="col">${h(t(`mrv.col.${c}`))}</th>`)
    .join('');
  const rows = reports
    .map(
      (r) =>
        `<tr data-report="${h(r.id)}"><td><a href="/verifier/reports/${h(r.id)}">${h(r.unitId === null ? t('mrvsite.listName', { count: r.unitCount }) : r.unitName)}</a></td><td>${h(r.siteName)}</td><td>${h(periodLabel(f, r.periodStart, r.periodEnd))}</td><td>${h(t('mrv.version', { version: r.version }))}</td><td>${h(f.dateTime(r.issuedAt))}</td><td>${h(num(f, r.leafCount, 0))}</td><td><code class="hash">${h(r.merkleRoot.slice(0, 16))}…</code></td></tr>`,
    )
    .join('');
  return verifierLayout({
    f,
    title: t('mrv.list.title'),
    signedIn: true,
    body: `<p class="scope">${h(scope)}</p>${
      reports.length === 0
        ? `<p>${h(t('mrv.list.empty'))}</p>`
        : `<div class="table-wrap" tabindex="0" role="region" aria-label="${h(t('mrv.tableScrolls'))}"><table class="reports"><thead><tr>${head}</tr></thead><tbody>${rows}</tbody></table></div>`
    }`,
  });
}

/** Daily means of the hourly buckets: the charts' text alternative. */
export function dailyMeans(buckets: readonly HourBucket[]) {
  const days = new Map<string, { flow: number[]; methane: number[]; readings: number }>();
  for (const b of buckets) {
    const key = new Date(b.t * 1000).toISOString().slice(0, 10);
    const d = days.get(key) ?? { flow: [], methane: [], readings: 0 };
    if (b.flowLpm !== null) d.flow.push(b.flowLpm);
    if (b.methanePct !== null) d.methane.push(b.methanePct);
    d.readings += b.readings;
    days.set(key, d);
  }
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  return [...days].map(([day, d]) => ({
    day,
    flow: mean(d.flow),
    methane: mean(d.methane),
    readings: d.readings,
  }));
}

type Report = ReportDocument['report'] & {
  quantities: Record<string, number>;
  estimate: Record<string, number>;
  /** Absent on a site report (completeness is per digester). */
  completeness?: { metrics: Record<string, { ratio: number }> };
  /** unit: a digester report; digesters: a site report. */
  subject: { unit?: { name: string }; site: { name: string }; digesters?: unknown[] };
  period: { start: string; end: string };
};

export function asReport(doc: ReportDocument): Report {
  return doc.report as Report;
}

export function reportPage(
  f: Formatter,
  row: VisibleReport,
  doc: ReportDocument,
  buckets: readonly HourBucket[],
): string {
  const t = f.t;
  const r = asReport(doc);
  const q = r.quantities;
  const fig = (key: MessageKey, field: string, v: number, digits = 2) =>
    `<div class="figure"><dt>${h(t(key))}</dt><dd>${dataNum(f, field, v, digits)}</dd></div>`;
  const figures = [
    fig('mrv.q.biogasNm3', 'quantities.biogasNm3', q.biogasNm3!),
    fig('mrv.q.methaneKg', 'quantities.methaneKg', q.methaneKg!),
    fig('mrv.q.energyMj', 'quantities.energyMj', q.energyMj!, 0),
    fig('mrv.e.total', 'estimate.totalKgCo2e', r.estimate.totalKgCo2e!),
    r.completeness
      ? `<div class="figure"><dt>${h(t('mrv.flowCompleteness'))}</dt><dd>${h(new Intl.NumberFormat(f.locale, { style: 'percent', maximumFractionDigits: 1 }).format(r.completeness.metrics.gas_flow_lpm?.ratio ?? 0))}</dd></div>`
      : '',
  ].join('');
  const days = dailyMeans(buckets);
  const dayFmt = new Intl.DateTimeFormat(f.locale, {
    timeZone: 'UTC',
    weekday: 'short',
    month: 'short',
    day: 'numeric',
  });
  const cell = (v: number | null) => (v === null ? '—' : num(f, v, 1));
  const table = days.length
    ? `<div class="table-wrap" tabindex="0" role="region" aria-label="${h(t('mrv.tableScrolls'))}"><table class="daily"><caption>${h(t('mrv.chart.summary'))}</caption><thead><tr><th scope="col">${h(t('mrv.col.day'))}</th><th scope="col">${h(t('mrv.col.flow'))}</th><th scope="col">${h(t('mrv.col.methane'))}</th><th scope="col">${h(t('mrv.col.readings'))}</th></tr></thead><tbody>${days
        .map(
          (d) =>
            `<tr><th scope="row">${h(dayFmt.format(new Date(`${d.day}T00:00:00Z`)))}</th><td>${h(cell(d.flow))}</td><td>${h(cell(d.methane))}</td><td>${h(num(f, d.readings, 0))}</td></tr>`,
        )
        .join('')}</tbody></table></div>`
    : `<p>${h(t('mrv.chart.none'))}</p>`;
  const base = `/verifier/reports/${h(row.id)}`;
  return verifierLayout({
    f,
    title: r.subject.digesters
      ? t('mrvsite.title', {
          site: r.subject.site.name,
          count: r.subject.digesters.length,
          period: periodLabel(f, row.periodStart, row.periodEnd),
        })
      : t('mrv.report.title', {
          unit: r.subject.unit?.name ?? '',
          period: periodLabel(f, row.periodStart, row.periodEnd),
        }),
    signedIn: true,
    data: {
      chart: {
        t: buckets.map((b) => b.t),
        flow: buckets.map((b) => b.flowLpm),
        methane: buckets.map((b) => b.methanePct),
        from: Date.parse(r.period.start) / 1000,
        to: Date.parse(r.period.end) / 1000,
      },
    },
    body: `<p><a href="/verifier">${h(t('mrv.back'))}</a></p><p class="label">${h(t('mrv.report.label'))}</p>
<section aria-labelledby="figures"><h2 id="figures">${h(t('mrv.section.figures'))}</h2><dl class="figures">${figures}</dl></section>
<section aria-labelledby="production"><h2 id="production">${h(t('mrv.section.production'))}</h2>
<figure class="chart"><figcaption id="chart-flow-title">${h(t('mrv.chart.flow'))}</figcaption><div id="chart-flow" class="verifier-chart" role="img" aria-labelledby="chart-flow-title"></div></figure>
<figure class="chart"><figcaption id="chart-methane-title">${h(t('mrv.chart.methane'))}</figcaption><div id="chart-methane" class="verifier-chart" role="img" aria-labelledby="chart-methane-title"></div></figure>
${table}</section>
<section aria-labelledby="downloads"><h2 id="downloads">${h(t('mrv.section.downloads'))}</h2><ul class="downloads">
<li><a href="${base}/report.json" download>${h(t('mrv.download.json'))}</a></li>
<li><a href="${base}/readings.csv" download>${h(t('mrv.download.csv'))}</a></li>
<li><a href="${base}/report.html">${h(t('mrv.download.html'))}</a></li>
<li><a href="${base}/leaf-hashes.bin" download>${h(t('mrv.download.leaves'))}</a></li></ul>
<p class="muted">${h(t('mrv.download.note'))}</p></section>`,
  });
}
