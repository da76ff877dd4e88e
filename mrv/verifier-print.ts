// layer: the printable report, an HTML view of the signed document; every value escaped
import { escapeHtml as h } from '../api/escape-html.ts';
import type { Formatter } from '../dashboards/format-fns.ts';
import type { MessageKey } from '../i18n/index.ts';
import type { ReportDocument } from './mrv-report-fns.ts';
import { asReport, dataNum, periodLabel, VERIFIER_ASSETS } from './verifier-pages.ts';

/**
 * The printable report: every figure of the signed document, in the reader's language, with a
 * print stylesheet (verifier.css, @media print) and no script. Numbers carry their exact signed
 * value in `<data value data-field="path">`, so a machine (and the consistency test) can check
 * the page against report.json. The page is a view: the signed JSON is the report.
 */

type Row = Record<string, unknown>;

function text(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

function table(f: Formatter, cols: MessageKey[], rows: string[][], cls = ''): string {
  if (rows.length === 0) return `<p>${h(f.t('mrv.none'))}</p>`;
  return `<div class="table-wrap" tabindex="0" role="region" aria-label="${h(f.t('mrv.tableScrolls'))}"><table${cls ? ` class="${cls}"` : ''}><thead><tr>${cols.map((c) => `<th scope="col">${h(f.t(c))}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table></div>`;
}

interface UnitPart {
  quantities: Record<string, number>;
  estimate: Record<string, number>;
  completeness: {
    metrics: Record<
      string,
      {
        received: number;
        missing: number;
        ratio: number;
        gaps: { start: string; end: string; intervals: number }[];
      }
    >;
  };
  quarantine: { total: number; byReason: Record<string, number> };
  excludedReadings: Row[];
  provenance: {
    devices: (Row & { id: string; certificates: Row[] })[];
    firmwareHistory?: Row[];
    alertsOpen: Row[];
    calibrations: Row[];
    calibrationVersions?: Row[];
  };
}

type Section = (key: MessageKey, body: string) => string;

/** Quantities and estimate of a report, or of one digester of a site report (`prefix`: its path). */
function figures(
  f: Formatter,
  r: Pick<UnitPart, 'quantities' | 'estimate'>,
  prefix: string,
  section: Section,
): string {
  const t = f.t;
  const quantity = (key: MessageKey, field: string, v: number, digits = 3) => [
    h(t(key)),
    dataNum(f, `${prefix}${field}`, v, digits),
  ];
  const q = r.quantities;
  const quantities = table(
    f,
    ['mrv.col.quantity', 'mrv.col.value'],
    [
      quantity('mrv.q.biogasM3', 'quantities.biogasM3', q.biogasM3!),
      quantity('mrv.q.biogasNm3', 'quantities.biogasNm3', q.biogasNm3!),
      quantity('mrv.q.methaneFraction', 'quantities.methaneFraction', q.methaneFraction!, 6),
      quantity('mrv.q.methaneNm3', 'quantities.methaneNm3', q.methaneNm3!),
      quantity('mrv.q.methaneKg', 'quantities.methaneKg', q.methaneKg!),
      quantity('mrv.q.energyMj', 'quantities.energyMj', q.energyMj!),
    ],
  );
  const e = r.estimate;
  const estimate = table(
    f,
    ['mrv.col.quantity', 'mrv.col.value'],
    [
      quantity('mrv.e.displaced', 'estimate.displacedFuelKgCo2e', e.displacedFuelKgCo2e!),
      quantity('mrv.e.avoided', 'estimate.avoidedMethaneKgCo2e', e.avoidedMethaneKgCo2e!),
      quantity('mrv.e.total', 'estimate.totalKgCo2e', e.totalKgCo2e!),
    ],
  );
  return `${section('mrv.section.quantities', quantities)}${section('mrv.section.estimate', estimate)}`;
}

/** Completeness, gaps, quarantine, exclusions and provenance of one digester. */
function unitDetails(f: Formatter, r: UnitPart, prefix: string, section: Section): string {
  const t = f.t;
  const when = (v: unknown) => (v ? h(f.dateTime(text(v))) : h(t('mrv.open.still')));
  const metrics = Object.entries(r.completeness.metrics);
  const completeness = table(
    f,
    ['mrv.col.metric', 'mrv.col.received', 'mrv.col.missing', 'mrv.col.ratio', 'mrv.col.gaps'],
    metrics.map(([m, c]) => [
      `<code>${h(m)}</code>`,
      dataNum(f, `${prefix}completeness.metrics.${m}.received`, c.received, 0),
      dataNum(f, `${prefix}completeness.metrics.${m}.missing`, c.missing, 0),
      dataNum(f, `${prefix}completeness.metrics.${m}.ratio`, c.ratio, 4),
      h(String(c.gaps.length)),
    ]),
  );
  const gaps = metrics
    .filter(([, c]) => c.gaps.length > 0)
    .map(
      ([m, c]) =>
        `<h3><code>${h(m)}</code></h3>${table(
          f,
          ['mrv.col.start', 'mrv.col.end', 'mrv.col.intervals'],
          c.gaps.map((g) => [
            `<time datetime="${h(g.start)}">${h(f.dateTime(g.start))}</time>`,
            `<time datetime="${h(g.end)}">${h(f.dateTime(g.end))}</time>`,
            h(String(g.intervals)),
          ]),
          'gaps',
        )}`,
    )
    .join('');
  const quarantine = `<p>${h(t('mrv.quarantine.total', { count: r.quarantine.total }))}</p>${table(
    f,
    ['mrv.col.reason', 'mrv.col.count'],
    Object.entries(r.quarantine.byReason).map(([k, n]) => [`<code>${h(k)}</code>`, h(String(n))]),
  )}`;
  const excluded = table(
    f,
    [
      'mrv.col.device',
      'mrv.col.metric',
      'mrv.col.reason',
      'mrv.col.from',
      'mrv.col.to',
      'mrv.col.count',
    ],
    r.excludedReadings.map((x) => [
      h(text(x.deviceId)),
      h(text(x.metric)),
      h(text(x.reason)),
      h(f.dateTime(String(x.first))),
      h(f.dateTime(String(x.last))),
      h(text(x.count)),
    ]),
  );
  const devices = table(
    f,
    [
      'mrv.col.device',
      'mrv.col.firmware',
      'mrv.col.certificate',
      'mrv.col.fingerprint',
      'mrv.col.validity',
    ],
    r.provenance.devices.flatMap((d) =>
      (d.certificates.length ? d.certificates : [{}]).map((c) => [
        h(d.id),
        h(text(d.firmwareVersion)),
        h(text(c.serial)),
        `<code class="hash">${h(text(c.fingerprintSha256))}</code>`,
        c.notBefore ? `${when(c.notBefore)} – ${when(c.notAfter)}` : '—',
      ]),
    ),
  );
  const firmware = table(
    f,
    ['mrv.col.device', 'mrv.col.firmware', 'mrv.col.from', 'mrv.col.to'],
    (r.provenance.firmwareHistory ?? []).map((x) => [
      h(text(x.deviceId)),
      h(text(x.version)),
      when(x.from),
      when(x.to),
    ]),
  );
  const alerts = table(
    f,
    ['mrv.col.rule', 'mrv.col.device', 'mrv.col.severity', 'mrv.col.from', 'mrv.col.to'],
    r.provenance.alertsOpen.map((a) => [
      h(text(a.ruleId)),
      h(text(a.deviceId)),
      h(text(a.severity)),
      when(a.openedAt),
      when(a.closedAt),
    ]),
  );
  const calibrations = table(
    f,
    [
      'mrv.col.device',
      'mrv.col.metric',
      'mrv.col.result',
      'mrv.col.from',
      'mrv.col.to',
      'mrv.col.reference',
    ],
    r.provenance.calibrations.map((c) => [
      h(text(c.deviceId)),
      h(text(c.metric)),
      h(text(c.result)),
      when(c.validFrom),
      when(c.validTo),
      h(text(c.reference)),
    ]),
  );
  const gainOffset = (c: unknown) =>
    c
      ? Object.entries(c as Record<string, { gain: number; offset: number }>)
          .map(([m, g]) => `<code>${h(m)}</code> × ${h(String(g.gain))} + ${h(String(g.offset))}`)
          .join('<br>') || '—'
      : h(t('mrvsite.factory'));
  const versions = table(
    f,
    [
      'mrv.col.device',
      'mrvsite.col.version',
      'mrvsite.col.calibration',
      'mrv.col.from',
      'mrv.col.to',
      'mrv.col.readings',
    ],
    (r.provenance.calibrationVersions ?? []).map((v, i) => [
      h(text(v.deviceId)),
      h(v.version === null ? t('mrvsite.factory') : text(v.version)),
      gainOffset(v.calibration),
      when(v.from),
      when(v.to),
      dataNum(f, `${prefix}provenance.calibrationVersions.${i}.readings`, Number(v.readings), 0),
    ]),
  );
  return `${section('mrv.section.completeness', completeness)}${gaps ? section('mrv.section.gaps', gaps) : ''}${section('mrv.section.quarantine', quarantine)}
${section('mrv.section.excluded', excluded)}${section('mrv.section.devices', devices)}${section('mrv.section.firmware', firmware)}
${section('mrv.section.alerts', alerts)}${section('mrv.section.calibrations', calibrations)}${section('mrvsite.section.calibrationVersions', versions)}`;
}

export function printableReport(f: Formatter, doc: ReportDocument): string {
  const t = f.t;
  const r = asReport(doc) as ReturnType<typeof asReport> &
    UnitPart & {
      parameters: Record<string, { value: unknown; source: string }>;
      subject: { unit?: { name: string }; site: { name: string }; digesters?: unknown[] };
      digesters?: (UnitPart & {
        unit: { name: string };
        leaves: { first: number; count: number };
      })[];
      version: number;
      supersedes: string | null;
      supersedeReason: string | null;
      issuedAt: string;
    };
  const start = new Date(r.period.start);
  const end = new Date(r.period.end);
  const period = periodLabel(f, start, end);
  const title = r.digesters
    ? t('mrvsite.title', { site: r.subject.site.name, count: r.digesters.length, period })
    : t('mrv.report.title', { unit: r.subject.unit?.name ?? '', period });
  const section: Section = (key, body) => `<section><h2>${h(t(key))}</h2>${body}</section>`;
  const sub: Section = (key, body) => `<section><h3>${h(t(key))}</h3>${body}</section>`;
  const parameters = table(
    f,
    ['mrv.col.quantity', 'mrv.col.value', 'mrv.col.source'],
    Object.entries(r.parameters).map(([k, p]) => [
      `<code>${h(k)}</code>`,
      typeof p.value === 'number'
        ? dataNum(f, `parameters.${k}.value`, p.value, 6)
        : h(text(p.value)),
      h(p.source),
    ]),
  );
  // A site report: its totals, then each digester with every figure of its own.
  const body = r.digesters
    ? `<p>${h(t('mrvsite.totals'))}</p>${figures(f, r, '', section)}${section('mrv.section.parameters', parameters)}
${r.digesters
  .map(
    (d, i) =>
      `<section class="digester"><h2>${h(t('mrvsite.digester', { name: d.unit.name }))}</h2><p>${h(
        d.leaves.count
          ? t('mrvsite.leaves', {
              first: d.leaves.first,
              last: d.leaves.first + d.leaves.count - 1,
              count: d.leaves.count,
            })
          : t('mrvsite.noLeaves'),
      )}</p>${figures(f, d, `digesters.${i}.`, sub)}${unitDetails(f, d, `digesters.${i}.`, sub)}</section>`,
  )
  .join('\n')}`
    : `${figures(f, r, '', section)}${section('mrv.section.parameters', parameters)}
${unitDetails(f, r, '', section)}`;
  const m = r.merkle;
  const integrity = `<dl class="integrity">
<dt>${h(t('mrv.i.reportId'))}</dt><dd><code data-field="id">${h(r.id)}</code></dd>
<dt>${h(t('mrv.col.version'))}</dt><dd>${dataNum(f, 'version', r.version, 0)}</dd>
${r.supersedes ? `<dt>${h(t('mrv.i.supersedes'))}</dt><dd><code data-field="supersedes">${h(r.supersedes)}</code></dd><dt>${h(t('mrv.i.reason'))}</dt><dd>${h(text(r.supersedeReason))}</dd>` : ''}
<dt>${h(t('mrv.i.issued'))}</dt><dd><time datetime="${h(r.issuedAt)}">${h(f.dateTime(r.issuedAt))}</time></dd>
<dt>${h(t('mrv.i.size'))}</dt><dd>${dataNum(f, 'merkle.size', m.size, 0)}</dd>
<dt>${h(t('mrv.i.root'))}</dt><dd><code class="hash" data-field="merkle.root">${h(m.root)}</code></dd>
<dt>${h(t('mrv.i.encoding'))}</dt><dd><code>${h(m.encoding)}</code></dd>
<dt>${h(t('mrv.i.algorithm'))}</dt><dd><code>${h(doc.signature.algorithm)}</code></dd>
<dt>${h(t('mrv.i.keyId'))}</dt><dd><code data-field="signature.keyId">${h(doc.signature.keyId)}</code></dd>
<dt>${h(t('mrv.i.signature'))}</dt><dd><code class="hash" data-field="signature.value">${h(doc.signature.value)}</code></dd></dl>`;
  return `<!doctype html><html lang="${f.lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${h(title)} · ${h(t('mrv.brand'))}</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/app.css"><link rel="stylesheet" href="${VERIFIER_ASSETS}/verifier.css"></head>
<body class="verifier printable"><main id="main"><p class="brand">${h(t('mrv.brand'))}</p><h1>${h(title)}</h1>
<p class="subject">${h(r.subject.site.name)} · <time datetime="${h(r.period.start)}">${h(f.dateTime(r.period.start))}</time> – <time datetime="${h(r.period.end)}">${h(f.dateTime(r.period.end))}</time></p>
<p class="label">${h(t('mrv.report.label'))}</p>
${body}
${section('mrv.section.integrity', integrity)}
${section('mrv.section.check', `<p>${h(t('mrv.check.steps'))}</p>`)}</main></body></html>`;
}
