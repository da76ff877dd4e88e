import { alertTitle } from './alert-pages.ts';
import { roles } from '../auth/permissions.ts';
import type { PublicUser } from '../auth/user-service.ts';
import { lowIsBad } from './alert-rules.ts';
import type { Formatter } from './format-fns.ts';
import { badge, h, metricLabel } from './html.ts';
import { notice, type UnitOption } from './technician-pages.ts';
import type { MessageKey } from '../i18n/index.ts';

/** The pages for people and alert rules: users and their units (admin), thresholds (technician). */

const roleName = (f: Formatter, role: string) => f.t(`tech.role.${role}` as MessageKey);

export interface RuleRow {
  id: string;
  unitKind: string;
  metric: string | null;
  condition: string;
  warn: number;
  critical: number | null;
  clear: number;
  enabled: boolean;
  title: string;
}

/** Thresholds of every rule, one small form each, grouped by the kind of unit they apply to. */
export function rulesPage(rules: RuleRow[], f: Formatter, result?: string): string {
  const t = f.t;
  const num = (name: string, label: string, value: number | null, required: boolean) =>
    `<label>${h(label)} <input name="${name}" type="number" step="any" inputmode="decimal" value="${value ?? ''}"${required ? ' required' : ''}></label>`;
  const kinds = [...new Set(rules.map((r) => r.unitKind))].sort();
  return `${notice(result)}<p class="muted">${h(t('tech.rules.intro'))}</p>${kinds
    .map(
      (k) =>
        `<section><h2>${h(k === 'biodigester' ? t('tech.kind.biodigester') : t('tech.kind.collectionPoint'))}</h2>${rules
          .filter((r) => r.unitKind === k)
          .map((r) => {
            const unit = r.metric ? metricLabel(r.metric, t).unit : '';
            const dir = lowIsBad(r.condition) ? t('tech.rules.below') : t('tech.rules.above');
            return `<form class="tech-form rule" method="post" action="/manage/rules/${h(encodeURIComponent(r.id))}" data-tech data-rule="${h(r.id)}"><fieldset><legend>${h(alertTitle({ ruleId: r.id, title: r.title }, t))} <small>${h(dir)}${unit ? ` · ${h(unit)}` : ''}</small> ${r.enabled ? '' : badge('unknown', t('tech.rules.off'))}</legend>
${num('warn', t('tech.rules.warn'), r.warn, true)}${num('critical', t('tech.rules.critical'), r.critical, false)}${num('clear', t('tech.rules.clear'), r.clear, true)}
<label class="check"><input type="checkbox" name="enabled" value="on"${r.enabled ? ' checked' : ''}> ${h(t('tech.rules.enabled'))}</label><button type="submit">${h(t('tech.rules.save'))}</button></fieldset></form>`;
          })
          .join('')}</section>`,
    )
    .join('')}`;
}

export function usersPage(users: PublicUser[], f: Formatter, shown?: string): string {
  const t = f.t;
  const rows = users
    .map(
      (u) =>
        `<tr data-user="${h(u.username)}"><td><a href="/manage/users/${h(u.id)}">${h(u.username)}</a></td><td>${h(u.displayName)}</td><td>${h(roleName(f, u.role))}</td><td>${u.erased ? badge('unknown', t('tech.users.erased')) : u.disabled ? badge('critical', t('tech.users.disabled')) : badge('online', t('tech.users.active'))}</td></tr>`,
    )
    .join('');
  return `${shown ?? ''}<section><h2>${h(t('tech.users.create'))}</h2><form class="tech-form" method="post" action="/manage/users" data-tech>
<label>${h(t('tech.users.username'))} <input name="username" required pattern="[A-Za-z0-9._\\-]{3,64}" autocapitalize="none" autocomplete="off"></label>
<label>${h(t('tech.users.displayName'))} <input name="displayName" required maxlength="128" autocomplete="off"></label>
<label>${h(t('tech.users.email'))} <input name="email" type="email" maxlength="254" autocomplete="off"></label>
<label>${h(t('tech.users.role'))} <select name="role" required>${roles.map((r) => `<option value="${r}">${h(roleName(f, r))}</option>`).join('')}</select></label>
<button type="submit">${h(t('tech.users.invite'))}</button></form></section>
<section><h2>${h(t('tech.users.list'))}</h2><div class="table-wrap" tabindex="0" role="region" aria-label="${h(t('tech.table.scrolls'))}"><table><thead><tr><th scope="col">${h(t('tech.users.username'))}</th><th scope="col">${h(t('tech.users.displayName'))}</th><th scope="col">${h(t('tech.users.role'))}</th><th scope="col">${h(t('tech.users.state'))}</th></tr></thead><tbody>${rows}</tbody></table></div></section>`;
}

/** A link made for someone (setup or reset): shown once, in the answer to the POST that made it. */
export function linkShown(f: Formatter, link: string, who: string): string {
  const t = f.t;
  return `<section class="enrolment" aria-labelledby="link-title"><h2 id="link-title">${h(t('tech.users.linkTitle', { name: who }))}</h2><p class="notice alert" role="alert">${h(t('tech.users.linkOnce'))}</p><p><label>${h(t('tech.users.link'))} <input class="token" value="${h(link)}" readonly data-link></label></p></section>`;
}

export function userPage(
  u: PublicUser,
  assigned: string[],
  units: UnitOption[],
  f: Formatter,
  result?: string,
): string {
  const t = f.t;
  const id = h(u.id);
  const scoped = u.role === 'kitchen_manager' || u.role === 'collector';
  const boxes = units
    .map(
      (x) =>
        `<label class="check"><input type="checkbox" name="unitIds" value="${h(x.id)}"${assigned.includes(x.id) ? ' checked' : ''}> ${h(x.name)} <small>${h(x.site)} · ${h(x.kind === 'biodigester' ? t('tech.kind.biodigester') : t('tech.kind.collectionPoint'))}</small></label>`,
    )
    .join('');
  return `${result ?? ''}<p class="sub">${h(u.displayName)} · ${h(roleName(f, u.role))}${u.email ? ` · ${h(u.email)}` : ''}</p>
<section><h2>${h(t('tech.users.roleTitle'))}</h2><form class="tech-form" method="post" action="/manage/users/${id}" data-tech data-confirm="${h(t('tech.users.roleConfirm', { name: u.username }))}">
<label>${h(t('tech.users.role'))} <select name="role">${roles.map((r) => `<option value="${r}"${r === u.role ? ' selected' : ''}>${h(roleName(f, r))}</option>`).join('')}</select></label>
<label class="check"><input type="checkbox" name="disabled" value="on"${u.disabled ? ' checked' : ''}> ${h(t('tech.users.disable'))}</label>
<button type="submit">${h(t('tech.users.save'))}</button></form></section>
<section><h2>${h(t('tech.users.unitsTitle'))}</h2><p class="muted">${h(scoped ? t('tech.users.unitsHint') : t('tech.users.unitsUnscoped'))}</p><form class="tech-form units" method="post" action="/manage/users/${id}/units" data-tech><fieldset><legend>${h(t('tech.users.units'))}</legend>${boxes || `<p class="empty">${h(t('tech.users.noUnits'))}</p>`}</fieldset><input type="hidden" name="unitIds" value=""><button type="submit">${h(t('tech.users.saveUnits'))}</button></form></section>
<section><h2>${h(t('tech.users.resetTitle'))}</h2><form method="post" action="/manage/users/${id}/reset-link" data-tech data-confirm="${h(t('tech.users.resetConfirm', { name: u.username }))}"><button type="submit">${h(t('tech.users.reset'))}</button></form></section>
<p><a href="/manage/users">${h(t('tech.users.back'))}</a></p>`;
}
