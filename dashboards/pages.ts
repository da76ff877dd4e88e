import { needsCollectionOrder } from '../field/field-fns.ts';
import type { Principal } from '../auth/principal.ts';
import { translator, type MessageKey } from '../i18n/index.ts';
import { alertList } from './alert-pages.ts';
import { healthOf, lowIsBad, type Health } from './alert-rules.ts';
import type { UnitSummary } from './dashboard-repo.ts';
import { localStamp } from './csv-fns.ts';
import { onlineBadge, resolveRules, type Rules, type RulesOf } from './fleet-pages.ts';
import type { Formatter } from './format-fns.ts';
import { badge, formatValue, h, metricLabel, tHtml, timeAgo } from './html.ts';

/**
 * Page bodies (inside layout()): the kitchen manager's digesters and the collector's collection
 * points here, the technician's fleet and device pages in fleet-pages.ts. Pure: data in, HTML
 * out, so they are cheap to test.
 */

export { deviceDetail, fleetTable } from './fleet-pages.ts';

const english = translator('en');

/** What a kitchen manager checks first, in this order. */
export const digesterMetrics = [
  'temperature_c',
  'ph',
  'biogas_pressure_kpa',
  'methane_pct',
  'gas_flow_lpm',
  'slurry_level_pct',
  'h2s_ppm',
] as const;

/**
 * How old a value may be before it is stale: the kind's offline rule (default 15 min), which is
 * the interval within which a sensor is expected to report.
 */
export function staleAfterMs(rules: Rules, kind: string): number {
  const r = rules.find(
    (x) => x.condition === 'offline_minutes' && (x.unitKind === undefined || x.unitKind === kind),
  );
  return (r?.warn ?? 15) * 60_000;
}

interface TileCtx {
  rules: Rules;
  f: Formatter;
  now: number;
  staleMs: number;
  /** Devices that are offline: their values are not current, whatever their age. */
  offline: ReadonlySet<string>;
}

const stateText: Record<Health, MessageKey> = {
  healthy: 'state.healthy',
  warning: 'state.warning',
  critical: 'state.critical',
  unknown: 'state.unknown',
};

/** A value's state in text (never colour only): offline or stale wins over its thresholds. */
export function tileState(
  metric: string,
  latest: UnitSummary['latest'][string] | undefined,
  ctx: Pick<TileCtx, 'rules' | 'now' | 'staleMs' | 'offline'> & { f?: Pick<Formatter, 't'> },
): { cls: Health | 'stale'; text: string } {
  const t = ctx.f?.t ?? english;
  if (!latest) return { cls: 'unknown', text: t('state.unknown') };
  if (ctx.offline.has(latest.deviceId)) return { cls: 'stale', text: t('state.sensorOffline') };
  if (ctx.now - new Date(latest.ts).getTime() > ctx.staleMs)
    return { cls: 'stale', text: t('state.stale') };
  const health = healthOf(ctx.rules, metric, latest.value);
  return { cls: health, text: t(stateText[health]) };
}

function tile(
  unitId: string,
  metric: string,
  latest: UnitSummary['latest'][string] | undefined,
  ctx: TileCtx,
  button?: { pressed: boolean },
): string {
  const { name, unit } = metricLabel(metric, ctx.f.t);
  const state = tileState(metric, latest, ctx);
  const tag = button ? `button type="button" aria-pressed="${button.pressed}"` : 'div';
  const data = latest
    ? ` data-device="${h(latest.deviceId)}" data-ts="${h(new Date(latest.ts).toISOString())}"`
    : '';
  return `<${tag} class="tile ${state.cls}" data-unit="${h(unitId)}" data-metric="${h(metric)}"${data}><span class="label"${button ? ` data-on-chart="${h(ctx.f.t('chart.onChart'))}"` : ''}>${h(name)}</span><span class="value">${h(formatValue(metric, latest?.value, ctx.f.t))}</span><span class="unit">${h(unit)}</span><span class="state">${h(state.text)}</span><span class="age">${latest ? timeAgo(ctx.f, latest.ts, ctx.now) : ''}</span></${button ? 'button' : 'div'}>`;
}

function tileCtx(unit: UnitSummary, rules: Rules, f: Formatter, now: number): TileCtx {
  return {
    rules,
    f,
    now,
    staleMs: staleAfterMs(rules, unit.kind),
    offline: new Set(unit.devices.filter((d) => !d.online).map((d) => d.id)),
  };
}

function worst(unit: UnitSummary, ctx: TileCtx): Health | 'stale' {
  if (unit.alerts.some((a) => a.severity === 'critical')) return 'critical';
  if (unit.alerts.length > 0) return 'warning';
  return ctx.offline.size > 0 ||
    Object.values(unit.latest).some((l) => ctx.now - new Date(l.ts).getTime() > ctx.staleMs)
    ? 'stale'
    : 'healthy';
}

/** The unit's state in words: open alerts, and whether its values are current. */
function unitBadge(unit: UnitSummary, ctx: TileCtx): string {
  const t = ctx.f.t;
  const out: string[] = [];
  if (unit.alerts.length > 0)
    out.push(
      badge(
        unit.alerts.some((a) => a.severity === 'critical') ? 'critical' : 'warning',
        t('unit.openAlerts', { count: unit.alerts.length }),
      ),
    );
  if (ctx.offline.size > 0) out.push(badge('stale', t('state.sensorOffline')));
  else if (Object.values(unit.latest).some((l) => ctx.now - new Date(l.ts).getTime() > ctx.staleMs))
    out.push(badge('stale', t('unit.valuesStale')));
  return out.join(' ') || badge('healthy', t('unit.noAlerts'));
}

/** "updated 3 minutes ago", the age kept fresh by the client (data-updated). */
function updated(u: UnitSummary, f: Formatter, now: number): string {
  return tHtml(f, 'unit.updated', {
    ago: `<span data-updated="${h(u.id)}">${timeAgo(f, lastUpdate(u), now)}</span>`,
  });
}

function lastUpdate(unit: UnitSummary): string | undefined {
  return Object.values(unit.latest).reduce<string | undefined>(
    (a, l) => (!a || new Date(l.ts) > new Date(a) ? l.ts : a),
    undefined,
  );
}

export function digesterList(
  units: UnitSummary[],
  rules: Rules | RulesOf,
  f: Formatter,
  now = Date.now(),
): string {
  if (units.length === 0) return `<p class="empty">${h(f.t('digesters.empty'))}</p>`;
  const rulesOf = resolveRules(rules);
  return `<section class="cards">${units
    .map((u) => {
      const ctx = tileCtx(u, rulesOf(u.id, u.kind), f, now);
      return `<article class="card ${worst(u, ctx)}" data-unit="${h(u.id)}"><h2><a href="/digesters/${h(u.id)}">${h(u.name)}</a> <small>${h(u.site)}</small></h2>
<div class="tiles">${digesterMetrics.map((m) => tile(u.id, m, u.latest[m], ctx)).join('')}</div>
<p class="meta">${unitBadge(u, ctx)} · ${updated(u, f, now)}</p></article>`;
    })
    .join('')}</section>`;
}

export function digesterDetail(
  u: UnitSummary,
  rules: Rules,
  gas: { day: string; m3: number }[],
  principal: Principal,
  f: Formatter,
  now = Date.now(),
): string {
  const ctx = tileCtx(u, rules, f, now);
  const maxGas = Math.max(0.001, ...gas.map((g) => g.m3));
  const devices = u.devices
    .map(
      (d) =>
        `<li>${h(d.id)} ${onlineBadge(d.online, f)} · ${tHtml(f, 'digester.seen', { ago: timeAgo(f, d.lastSeenAt, now) })}</li>`,
    )
    .join('');
  const t = f.t;
  return `<p class="sub">${h(u.site)} · ${unitBadge(u, ctx)} · ${updated(u, f, now)}</p>
<section class="tiles big" aria-label="${h(t('digester.tiles'))}">${digesterMetrics.map((m, i) => tile(u.id, m, u.latest[m], ctx, { pressed: i === 0 })).join('')}</section>
<section class="chart-panel" aria-labelledby="chart-title"><div class="ranges" role="group" aria-label="${h(t('chart.range'))}">${chartRanges.map((r) => `<button type="button" data-range="${r}" aria-pressed="${r === '24h'}">${h(t(`range.${r}`))}</button>`).join('')}</div>
<h2 id="chart-title">${h(metricLabel(digesterMetrics[0], t).name)}</h2><figure class="chart"><div id="chart" data-unit="${h(u.id)}"></div><figcaption id="chart-summary">${h(t('chart.loading'))}</figcaption></figure>
<details class="chart-data"><summary>${h(t('chart.asTable'))}</summary><div class="table-wrap" tabindex="0" role="region" aria-label="${h(t('table.scrolls'))}"><table id="chart-table"><caption class="muted">${h(t('chart.newestFirst'))}</caption><thead><tr><th scope="col">${h(t('chart.time'))}</th><th scope="col">${h(t('chart.average'))}</th><th scope="col">${h(t('chart.min'))}</th><th scope="col">${h(t('chart.max'))}</th></tr></thead><tbody></tbody></table></div></details>
<p class="muted" id="chart-note">${h(t('chart.note', { zone: f.timeZone }))}</p></section>
<section><h2>${h(t('gas.title'))}</h2><table class="gas"><tbody>${gas
    .map(
      (g) =>
        `<tr><th scope="row">${h(f.day(g.day))}</th><td><meter min="0" max="${maxGas}" value="${g.m3}" aria-label="${h(t('gas.on', { day: f.day(g.day) }))}">${g.m3}</meter></td><td>${g.m3.toFixed(2)} m³</td></tr>`,
    )
    .join('')}</tbody></table></section>
<section><h2>${h(t('digester.openAlerts'))}</h2><div id="alerts" data-unit="${h(u.id)}">${alertList(u.alerts, principal, f)}</div></section>
${downloadForm(u.id, f, now)}
<section><h2>${h(t('digester.sensors'))}</h2><ul class="devices">${devices || `<li class="muted">${h(t('common.none'))}</li>`}</ul></section>`;
}

/** The chart's ranges (the series API's `range`), each with its name in the catalogue. */
export const chartRanges = ['24h', '7d', '30d', '1y'] as const;

/** Readings and daily gas as CSV for a range of local days (the last 7 by default). */
function downloadForm(unitId: string, f: Formatter, now: number): string {
  const today = localStamp(new Date(now), f.timeZone).slice(0, 10);
  const weekAgo = localStamp(new Date(now - 6 * 86_400_000), f.timeZone).slice(0, 10);
  const t = f.t;
  return `<section><h2>${h(t('download.title'))}</h2><form class="download filters" method="get" action="/api/v1/units/${h(unitId)}/readings">
<label>${h(t('download.from'))} <input type="date" name="from" value="${weekAgo}" max="${today}" required></label><label>${h(t('download.to'))} <input type="date" name="to" value="${today}" max="${today}" required></label>
<button type="submit" name="format" value="csv">${h(t('download.readings'))}</button><button type="submit" name="format" value="csv" formaction="/api/v1/units/${h(unitId)}/gas">${h(t('download.gas'))}</button></form>
<p class="muted">${h(t('download.note', { zone: f.timeZone }))}</p></section>`;
}

/** A collection point's "needs collection" level: its own fill rule's warn, else the kind's. */
export function needsAtOf(rules: Rules, fallback: number): number {
  return (
    rules.find(
      (r) => r.metric === 'fill_level_pct' && !lowIsBad(r.condition) && r.enabled !== false,
    )?.warn ?? fallback
  );
}

/** `needsAt`: the kind's level (said in the header); a unit with its own fill rule uses that. */
export function collectionList(
  units: UnitSummary[],
  needsAt: number,
  rules: Rules | RulesOf,
  f: Formatter,
  now = Date.now(),
  order?: readonly string[],
): string {
  if (units.length === 0) return `<p class="empty">${h(f.t('collection.empty'))}</p>`;
  const rulesOf = resolveRules(rules);
  const own = (u: UnitSummary) => needsAtOf(rulesOf(u.id, u.kind), needsAt);
  // The one collection order (field/field-fns.ts), as the collector's "needs collection" list:
  // given with forecasts by the field service, else the same function on fill levels alone,
  // each point at its own fill threshold.
  const ownById = new Map(units.map((u) => [u.id, own(u)]));
  const ids =
    order ??
    needsCollectionOrder(
      units.map((u) => {
        const fill = u.latest.fill_level_pct;
        return {
          unitId: u.id,
          fill: fill ? { pct: fill.value, ts: new Date(fill.ts) } : null,
          lastCollectedAt: null,
          forecast: { kind: 'none', reason: 'too-few-readings', points: 0 } as const,
        };
      }),
      (id) => ownById.get(id) ?? needsAt,
      { now },
    ).map((d) => d.unitId);
  const rank = new Map(ids.map((id, i) => [id, i]));
  const sorted = [...units].sort(
    (a, b) =>
      (rank.get(a.id) ?? ids.length) - (rank.get(b.id) ?? ids.length) || a.id.localeCompare(b.id),
  );
  const due = sorted.filter((u) => (u.latest.fill_level_pct?.value ?? 0) >= own(u)).length;
  // A bin whose fill level is not current may be full: "nothing to collect" is not known then.
  const unknown = sorted.filter(
    (u) =>
      tileState(
        'fill_level_pct',
        u.latest.fill_level_pct,
        tileCtx(u, rulesOf(u.id, u.kind), f, now),
      ).cls === 'stale' || !u.latest.fill_level_pct,
  ).length;
  const t = f.t;
  const summary = [
    due > 0
      ? badge('warning', t('collection.due', { count: due }))
      : unknown === 0
        ? badge('healthy', t('collection.nothing'))
        : '',
    unknown > 0 ? badge('stale', t('collection.notCurrent', { count: unknown })) : '',
  ]
    .filter(Boolean)
    .join(' ');
  return `<p class="sub">${summary} ${h(t('collection.threshold', { pct: needsAt }))}</p>
<section class="cards">${sorted
    .map((u) => {
      const ctx = tileCtx(u, rulesOf(u.id, u.kind), f, now);
      const fill = u.latest.fill_level_pct?.value;
      const unitNeedsAt = own(u);
      const needs = fill != null && fill >= unitNeedsAt;
      const w = worst(u, ctx);
      const state = needs
        ? `${badge('warning', t('collection.needs'))}${w === 'healthy' ? '' : ` ${unitBadge(u, ctx)}`}`
        : w === 'healthy'
          ? badge('healthy', t('state.healthy'))
          : unitBadge(u, ctx);
      return `<article class="card ${needs && w !== 'critical' ? 'warning' : w}" id="unit-${h(u.id)}" data-unit="${h(u.id)}"><h2>${h(u.name)} <small>${h(u.site)}</small></h2>
<p><meter min="0" max="100" low="${Math.min(unitNeedsAt, 60)}" high="${unitNeedsAt}" optimum="0" value="${fill ?? 0}" data-unit="${h(u.id)}" data-metric="fill_level_pct" aria-label="${h(metricLabel('fill_level_pct', t).name)}">${fill ?? 0} %</meter></p>
<div class="tiles">${['fill_level_pct', 'weight_kg', 'lid_open', 'temperature_c'].map((m) => tile(u.id, m, u.latest[m], ctx)).join('')}</div>
<p class="meta">${state} · ${updated(u, f, now)}</p></article>`;
    })
    .join('')}</section>`;
}
