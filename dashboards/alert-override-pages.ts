import type { MessageKey } from '../i18n/index.ts';
import type { ThresholdProblem, ThresholdValues } from './alert-override-fns.ts';
import { alertTitle } from './alert-pages.ts';
import { lowIsBad } from './alert-rules.ts';
import type { Formatter } from './format-fns.ts';
import { badge, h, metricLabel } from './html.ts';
import type { UnitOption } from './technician-pages.ts';

/**
 * The technician's per-unit thresholds (inside layout()): the unit picker on /manage/rules and
 * one unit's page, where each rule of its kind shows the values in force for the unit, which of
 * them are its own, and what every other unit of the kind uses. Pure.
 */

const kindName = (kind: string, f: Formatter) =>
  kind === 'biodigester' ? f.t('tech.kind.biodigester') : f.t('tech.kind.collectionPoint');

/** The picker: a unit of any kind, and which units have thresholds of their own. */
export function unitPicker(units: UnitOption[], overridden: ReadonlySet<string>, f: Formatter) {
  const t = f.t;
  const own = units.filter((u) => overridden.has(u.id));
  return `<section aria-labelledby="unit-rules-title"><h2 id="unit-rules-title">${h(t('rules.unit.pickTitle'))}</h2><p class="muted">${h(t('rules.unit.pickHint'))}</p>
<form class="tech-form" method="get" action="/manage/rules/units" data-unit-picker><label>${h(t('rules.unit.unit'))} <select name="unit" required>${units
    .map(
      (u) =>
        `<option value="${h(u.id)}">${h(u.name)} · ${h(u.site)} · ${h(kindName(u.kind, f))}</option>`,
    )
    .join('')}</select></label><button type="submit">${h(t('rules.unit.open'))}</button></form>${
    own.length
      ? `<p>${h(t('rules.unit.overridden'))} ${own.map((u) => `<a href="/manage/rules/units/${h(u.id)}">${h(u.name)}</a>`).join(', ')}</p>`
      : ''
  }</section>`;
}

/** A refused set of thresholds, said in the reader's language. */
export function problemNotice(
  problem: ThresholdProblem,
  rule: { id: string; title: string },
  f: Formatter,
): string {
  const t = f.t;
  return `<div class="notice alert" role="alert"><p><strong>${h(t('rules.invalid.title', { rule: alertTitle({ ruleId: rule.id, title: rule.title }, t) }))}</strong></p><p>${h(t(`rules.invalid.${problem.code}` as MessageKey, { side: problem.side }))}</p></div>`;
}

export interface UnitRuleRow extends ThresholdValues {
  id: string;
  metric: string | null;
  condition: string;
  title: string;
  overridden: boolean;
  kindRule: ThresholdValues;
}

/** One unit's rules: the values in force, its own ones marked, the kind's beside them. */
export function unitRulesPage(
  unit: { id: string; name: string; kind: string },
  rules: readonly UnitRuleRow[],
  f: Formatter,
  result = '',
): string {
  const t = f.t;
  const kind = kindName(unit.kind, f);
  const num = (
    name: 'warn' | 'critical' | 'clear',
    label: string,
    r: UnitRuleRow,
    required: boolean,
  ) => {
    const value = r[name];
    const theirs = r.kindRule[name];
    // The kind's value beside a value of the unit's own that differs from it.
    const hint =
      r.overridden && value !== theirs
        ? ` <small>${h(t('rules.unit.kindValue', { value: theirs ?? t('rules.unit.noValue') }))}</small>`
        : '';
    return `<label>${h(label)}${hint} <input name="${name}" type="number" step="any" inputmode="decimal" value="${value ?? ''}"${required ? ' required' : ''}></label>`;
  };
  const base = `/manage/rules/units/${h(unit.id)}`;
  const forms = rules
    .map((r) => {
      const action = `${base}/${h(encodeURIComponent(r.id))}`;
      const metricUnit = r.metric ? metricLabel(r.metric, t).unit : '';
      const dir = lowIsBad(r.condition) ? t('tech.rules.below') : t('tech.rules.above');
      const state = r.overridden
        ? badge('warning', t('rules.unit.own'))
        : badge('unknown', t('rules.unit.inherited', { kind }));
      const reset = r.overridden
        ? `<form class="tech-form" method="post" action="${action}/remove" data-tech data-reset="${h(r.id)}"><button type="submit">${h(t('rules.unit.reset'))}</button></form>`
        : '';
      return `<div class="unit-rule"><form class="tech-form rule" method="post" action="${action}" data-tech data-rule="${h(r.id)}" data-overridden="${r.overridden}"><fieldset><legend>${h(alertTitle({ ruleId: r.id, title: r.title }, t))} <small>${h(dir)}${metricUnit ? ` · ${h(metricUnit)}` : ''}</small> ${state}${r.enabled ? '' : ` ${badge('unknown', t('tech.rules.off'))}`}</legend>
${num('warn', t('tech.rules.warn'), r, true)}${num('critical', t('tech.rules.critical'), r, false)}${num('clear', t('tech.rules.clear'), r, true)}
<label class="check"><input type="checkbox" name="enabled" value="on"${r.enabled ? ' checked' : ''}> ${h(t('tech.rules.enabled'))}</label><button type="submit">${h(t('rules.unit.save'))}</button></fieldset></form>${reset}</div>`;
    })
    .join('');
  return `${result}<p class="muted">${h(t('rules.unit.intro', { kind }))}</p>${forms}<p><a href="/manage/rules">${h(t('rules.unit.back'))}</a></p>`;
}

/** The way from a digester's or device's page to its unit's thresholds (`alerts:configure`). */
export function unitRulesLink(unitId: string, f: Formatter): string {
  return `<p class="unit-rules-link"><a href="/manage/rules/units/${h(unitId)}">${h(f.t('rules.unit.link'))}</a></p>`;
}
