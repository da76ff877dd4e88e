import type { Formatter } from '../dashboards/format-fns.ts';
import { badge, h, timeAgo } from '../dashboards/html.ts';
import {
  CORRECTION_WINDOW_DAYS,
  EMPTYING_DROP_PCT,
  FEED_KG_MAX,
  COLLECTION_KG_MAX,
  FORECAST_WINDOW_MS,
  NOTE_MAX,
} from './field-fns.ts';
import type { CollectionView, FeedingView, FieldUnit } from './field-repo.ts';
import type { DuePoint, FeedGasDay } from './field-service.ts';

/**
 * The field pages' bodies (inside the dashboards' layout). Pure: data in, HTML out; every text
 * from the catalogue (i18n/messages/field.ts), every value escaped. The forms are sent by
 * /assets/field.js to the JSON API with the session's CSRF token.
 */

const DAY_MS = 86_400_000;
const kg = (f: Formatter, n: number) =>
  new Intl.NumberFormat(f.locale, { maximumFractionDigits: 1 }).format(n);

/** The wall-clock value of a datetime-local input, in the configured zone. */
function localInput(at: Date, timeZone: string): string {
  const p = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
    })
      .formatToParts(at)
      .map((x) => [x.type, x.value]),
  );
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

/** Kilograms fed beside gas produced, per day: a bar chart (field.js) and its table. */
export function feedGasSection(
  unitId: string,
  days: FeedGasDay[],
  f: Formatter,
  opts: { logLink: boolean },
): string {
  const t = f.t;
  const totalKg = days.reduce((a, d) => a + d.kg, 0);
  const totalM3 = days.reduce((a, d) => a + d.m3, 0);
  const rows = [...days]
    .reverse()
    .map(
      (d) =>
        `<tr><th scope="row">${h(f.day(d.day))}</th><td>${h(kg(f, d.kg))}</td><td>${h(d.m3.toFixed(2))}</td></tr>`,
    )
    .join('');
  const data = JSON.stringify({
    unitId,
    days,
    labels: { kg: t('field.feed.seriesKg'), m3: t('field.feed.seriesGas') },
  }).replace(/</g, '\\u003c');
  return `<section class="feed-gas" aria-labelledby="feed-title"><h2 id="feed-title">${h(t('field.feed.chartTitle', { days: days.length }))}</h2>
<figure class="chart"><div id="feed-chart" data-unit="${h(unitId)}"></div><figcaption id="feed-summary">${h(t('field.feed.summary', { days: days.length, kg: kg(f, totalKg), m3: totalM3.toFixed(2) }))}</figcaption></figure>
<details class="chart-data"><summary>${h(t('field.feed.table'))}</summary><div class="table-wrap" tabindex="0" role="region" aria-label="${h(t('field.table.scrolls'))}"><table id="feed-table"><thead><tr><th scope="col">${h(t('field.col.day'))}</th><th scope="col">${h(t('field.col.fedKg'))}</th><th scope="col">${h(t('field.col.gasM3'))}</th></tr></thead><tbody>${rows}</tbody></table></div></details>
${opts.logLink ? `<p><a href="/digesters/${h(unitId)}/feedings">${h(t('field.feed.openLog'))}</a></p>` : ''}
<script type="application/json" id="feed-data">${data}</script></section>`;
}

function feedingForm(
  f: Formatter,
  o: { id: string; unitId?: string; feeding?: FeedingView; now: Date },
): string {
  const t = f.t;
  const e = o.feeding;
  const attrs = e ? `data-feeding="${e.id}"` : `data-unit="${h(o.unitId ?? '')}"`;
  // Without its script the form still works: posted to the page route, answered with a redirect.
  const action = e
    ? `/digesters/${h(e.unitId)}/feedings/${e.id}`
    : `/digesters/${h(o.unitId ?? '')}/feedings`;
  return `<form class="field-form" id="${h(o.id)}" method="post" action="${action}" ${attrs} data-kind="feeding" data-zone="${h(f.timeZone)}" novalidate>
<label>${h(t('field.feeding.kg'))} <input name="kg" type="number" inputmode="decimal" min="0.1" max="${FEED_KG_MAX}" step="0.1" required value="${e ? h(String(e.kg)) : ''}"><small>${h(t('field.feeding.kgHint', { max: FEED_KG_MAX }))}</small></label>
<label>${h(t('field.time'))} <input name="at" type="datetime-local" max="${h(localInput(new Date(o.now.getTime() + 5 * 60_000), f.timeZone))}" value="${e ? h(localInput(e.fedAt, f.timeZone)) : ''}"><small>${h(e ? t('field.timeZoneHint', { zone: f.timeZone }) : t('field.timeHint', { zone: f.timeZone }))}</small></label>
<label>${h(t('field.note'))} <input name="note" maxlength="${NOTE_MAX}" value="${h(e?.note ?? '')}"></label>
<button type="submit">${h(e ? t('field.feeding.saveCorrection') : t('field.feeding.record'))}</button><p class="form-status" role="status"></p></form>`;
}

export function feedingPage(
  unit: FieldUnit,
  feedings: FeedingView[],
  feedGas: FeedGasDay[],
  f: Formatter,
  o: { actorId: string; canRecord: boolean; now?: Date },
): string {
  const t = f.t;
  const now = o.now ?? new Date();
  const editable = (e: FeedingView) =>
    o.canRecord &&
    e.recordedBy === o.actorId &&
    !e.voidedAt &&
    now.getTime() - e.recordedAt.getTime() <= CORRECTION_WINDOW_DAYS * DAY_MS;
  const rows = feedings
    .map((e) => {
      const state = e.voidedAt
        ? ` ${badge('unknown', t('field.feeding.deleted'))}`
        : e.correctedAt
          ? ` ${badge('unknown', t('field.feeding.corrected'))}`
          : '';
      const actions = editable(e)
        ? `<details class="edit"><summary>${h(t('field.feeding.edit'))}</summary>${feedingForm(f, { id: `edit-${e.id}`, feeding: e, now })}<button type="button" class="danger" data-delete-feeding="${e.id}" data-confirm="${h(t('field.feeding.confirmDelete'))}">${h(t('field.feeding.delete'))}</button></details>`
        : '';
      return `<li class="feeding${e.voidedAt ? ' voided' : ''}" data-feeding-id="${e.id}"><p><strong>${h(t('field.kgValue', { kg: kg(f, e.kg) }))}</strong> · <time datetime="${h(e.fedAt.toISOString())}">${h(f.dateTime(e.fedAt))}</time>${state}</p>
<p class="meta">${h(t('field.feeding.by', { name: e.recordedByName }))}${e.note ? ` · “${h(e.note)}”` : ''}</p>${actions}</li>`;
    })
    .join('');
  return `<p class="sub">${h(unit.site)} · <a href="/digesters/${h(unit.id)}">${h(t('field.feeding.back'))}</a></p>
${o.canRecord ? `<section aria-labelledby="record-title"><h2 id="record-title">${h(t('field.feeding.recordTitle'))}</h2>${feedingForm(f, { id: 'feeding-form', unitId: unit.id, now })}</section>` : ''}
${feedGasSection(unit.id, feedGas, f, { logLink: false })}
<section aria-labelledby="log-title"><h2 id="log-title">${h(t('field.feeding.logTitle'))}</h2><p class="muted">${h(t('field.feeding.logHint', { days: CORRECTION_WINDOW_DAYS }))}</p>
<ul class="field-list" id="feedings">${rows || `<li class="empty">${h(t('field.feeding.none'))}</li>`}</ul></section>`;
}

function collectForm(f: Formatter, unitId: string, now: Date, id: string): string {
  const t = f.t;
  return `<form class="field-form" id="${h(id)}" method="post" action="/collection/points/${h(unitId)}" data-unit="${h(unitId)}" data-kind="collection" data-zone="${h(f.timeZone)}" novalidate>
<label>${h(t('field.collect.weight'))} <input name="weightKg" type="number" inputmode="decimal" min="0.1" max="${COLLECTION_KG_MAX}" step="0.1" required><small>${h(t('field.collect.weightHint', { max: COLLECTION_KG_MAX }))}</small></label>
<label>${h(t('field.time'))} <input name="at" type="datetime-local" max="${h(localInput(new Date(now.getTime() + 5 * 60_000), f.timeZone))}"><small>${h(t('field.timeHint', { zone: f.timeZone }))}</small></label>
<label>${h(t('field.note'))} <input name="note" maxlength="${NOTE_MAX}"></label>
<button type="submit">${h(t('field.collect.submit'))}</button><p class="form-status" role="status"></p></form>`;
}

function forecastText(p: DuePoint, f: Formatter, now: Date): string {
  const t = f.t;
  if (p.collectedSinceReading) return t('field.due.waiting');
  if (p.forecast.kind === 'none') return t('field.due.noForecast');
  if (p.forecast.fullAt.getTime() <= now.getTime()) return t('field.due.fullNow');
  return t('field.due.fullIn', {
    when: f.ago(p.forecast.fullAt, now.getTime()),
    at: f.dateTime(p.forecast.fullAt),
    rate: p.forecast.slopePerHour.toFixed(1),
  });
}

export function duePage(
  points: DuePoint[],
  needsAt: number,
  f: Formatter,
  o: { canCollect: boolean; now?: Date },
): string {
  const t = f.t;
  const now = o.now ?? new Date();
  const due = points.filter((p) => p.due).length;
  const items = points
    .map((p, i) => {
      const pct = p.collectedSinceReading ? null : (p.fill?.pct ?? null);
      const state = p.collectedSinceReading
        ? badge('healthy', t('field.due.collected'))
        : p.due
          ? badge('warning', t('field.due.needs'))
          : pct == null
            ? badge('unknown', t('field.due.noReading'))
            : badge('healthy', t('field.due.notYet'));
      const last = p.lastCollectedAt
        ? t('field.due.lastCollected', { when: f.ago(p.lastCollectedAt, now.getTime()) })
        : t('field.due.neverCollected');
      return `<li class="card due-item ${p.due ? 'warning' : ''}" data-unit="${h(p.unitId)}" data-rank="${i + 1}"><h2>${h(p.unit.name)} <small>${h(p.unit.site)}</small></h2>
<p><meter min="0" max="100" low="${Math.min(needsAt, 60)}" high="${needsAt}" optimum="0" value="${pct ?? 0}" aria-label="${h(t('field.due.fillLabel'))}">${pct ?? 0} %</meter></p>
<p>${state}${p.stale && p.fill && !p.collectedSinceReading ? ` ${badge('stale', t('state.stale'))}` : ''} <strong>${pct == null ? '' : h(t('field.due.fill', { pct: Math.round(pct) }))}</strong>${p.fill && !p.collectedSinceReading ? ` · ${timeAgo(f, p.fill.ts, now.getTime())}` : ''}</p>
<p class="forecast">${h(forecastText(p, f, now))}</p><p class="meta">${h(last)} · <a href="/collection/points/${h(p.unitId)}">${h(t('field.due.history'))}</a></p>
${o.canCollect ? `<details class="collect"><summary>${h(t('field.collect.open'))}</summary>${collectForm(f, p.unitId, now, `collect-${p.unitId}`)}</details>` : ''}</li>`;
    })
    .join('');
  return `<p class="sub">${due > 0 ? badge('warning', t('field.due.count', { n: due })) : badge('healthy', t('field.due.noneDue'))} ${h(t('field.due.threshold', { pct: needsAt }))}</p>
<details class="method"><summary>${h(t('field.due.methodTitle'))}</summary><p>${h(t('field.due.order', { pct: needsAt }))}</p><p>${h(t('field.due.method', { hours: FORECAST_WINDOW_MS / 3_600_000, drop: EMPTYING_DROP_PCT }))}</p></details>
${items ? `<ol class="field-list due" id="due-list">${items}</ol>` : `<p class="empty">${h(t('field.due.nothing'))}</p>`}`;
}

export function pointPage(
  unit: FieldUnit,
  collections: CollectionView[],
  f: Formatter,
  o: { canCollect: boolean; now?: Date; today: string; yearAgo: string },
): string {
  const t = f.t;
  const now = o.now ?? new Date();
  const rows = collections
    .map(
      (c) =>
        `<tr><td><time datetime="${h(c.collectedAt.toISOString())}">${h(f.dateTime(c.collectedAt))}</time></td><td>${h(kg(f, c.weightKg))}</td><td>${h(c.collectedByName)}</td><td>${h(c.note ?? '')}</td></tr>`,
    )
    .join('');
  return `<p class="sub">${h(unit.site)} · <a href="/collection/due">${h(t('field.point.back'))}</a></p>
${o.canCollect ? `<section aria-labelledby="collect-title"><h2 id="collect-title">${h(t('field.collect.open'))}</h2>${collectForm(f, unit.id, now, 'collect-form')}</section>` : ''}
<section aria-labelledby="history-title"><h2 id="history-title">${h(t('field.point.history'))}</h2><div class="table-wrap" tabindex="0" role="region" aria-label="${h(t('field.table.scrolls'))}"><table id="collections"><thead><tr><th scope="col">${h(t('field.col.collectedAt'))}</th><th scope="col">${h(t('field.col.weightKg'))}</th><th scope="col">${h(t('field.col.by'))}</th><th scope="col">${h(t('field.note'))}</th></tr></thead>
<tbody>${rows || `<tr><td colspan="4" class="empty">${h(t('field.point.none'))}</td></tr>`}</tbody></table></div></section>
<section aria-labelledby="download-title"><h2 id="download-title">${h(t('field.point.download'))}</h2><form class="download filters" method="get" action="/api/v1/units/${h(unit.id)}/collections">
<label>${h(t('field.from'))} <input type="date" name="from" value="${h(o.yearAgo)}" max="${h(o.today)}" required></label><label>${h(t('field.to'))} <input type="date" name="to" value="${h(o.today)}" max="${h(o.today)}" required></label>
<button type="submit" name="format" value="csv">${h(t('field.point.csv'))}</button></form><p class="muted">${h(t('field.point.downloadHint', { zone: f.timeZone }))}</p></section>`;
}
