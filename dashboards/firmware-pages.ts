import type { RolloutView } from '../firmware/firmware-registry.ts';
import type { Formatter } from './format-fns.ts';
import { badge, h, tHtml, timeAgo } from './html.ts';
import { translateOr, type MessageKey, type Translate } from '../i18n/index.ts';

/** The firmware pages' bodies: releases and rollouts at a glance, a rollout device by device. */

export interface ReleaseRow {
  sha256: string;
  deviceKind: string;
  version: string;
  size: number;
  uploadedBy: string;
  uploadedAt: string;
  approvedBy: string | null;
}

export interface RolloutRow {
  id: string;
  version: string;
  deviceKind: string;
  status: 'active' | 'paused' | 'completed';
  pausedReason: string | null;
  createdAt: string;
  total: number;
  installed: number;
  failed: number;
  waiting: number;
}

const rolloutBadge = (status: string, t: Translate) =>
  badge(
    status === 'paused' ? 'critical' : status === 'active' ? 'warning' : 'healthy',
    translateOr(t, `rollout.${status}`, status),
  );

/** A table whose columns are named in the catalogue; `empty` (HTML) when there are no rows. */
function table(
  t: Translate,
  heads: (MessageKey | 'SHA-256')[],
  rows: string,
  empty: string,
): string {
  return `<div class="table-wrap" tabindex="0" role="region" aria-label="${h(t('table.scrolls'))}"><table><thead><tr>${heads.map((k) => `<th scope="col">${k === 'SHA-256' ? k : h(t(k))}</th>`).join('')}</tr></thead><tbody>${rows || `<tr><td colspan="${heads.length}" class="empty">${empty}</td></tr>`}</tbody></table></div>`;
}

export function firmwareOverview(
  releases: ReleaseRow[],
  rollouts: RolloutRow[],
  f: Formatter,
): string {
  const t = f.t;
  const kind = (k: string) => h(translateOr(t, `kind.${k}`, k));
  const rel = releases
    .map(
      (r) =>
        `<tr><td>${kind(r.deviceKind)}</td><td>${h(r.version)}</td><td>${(r.size / 1024).toFixed(0)} KB</td><td>${h(r.uploadedBy)}<br><small>${h(f.dateTime(r.uploadedAt))}</small></td><td>${r.approvedBy ? `${badge('healthy', t('fw.approved'))} ${h(r.approvedBy)}` : badge('warning', t('fw.awaiting'))}</td><td><code>${h(r.sha256.slice(0, 12))}…</code></td></tr>`,
    )
    .join('');
  const outs = rollouts
    .map(
      (r) =>
        `<tr><td><a href="/firmware/rollouts/${h(r.id)}">${h(r.version)} · ${kind(r.deviceKind)}</a><br><small>${timeAgo(f, r.createdAt)}</small></td><td>${rolloutBadge(r.status, t)}${r.pausedReason ? `<br><small lang="en">${h(r.pausedReason)}</small>` : ''}</td><td><meter min="0" max="${r.total}" value="${r.installed}">${r.installed}</meter> ${r.installed}/${r.total}</td><td>${r.failed > 0 ? badge('critical', String(r.failed)) : '0'}</td><td>${r.waiting}</td></tr>`,
    )
    .join('');
  const cli = { cli: '<code>thamani firmware</code>' };
  return `<section><h2>${h(t('fw.rollouts'))}</h2>${table(t, ['fw.release', 'device.status', 'fw.installed', 'fw.failed', 'fw.waiting'], outs, h(t('fw.noRollouts')))}</section>
<section><h2>${h(t('fw.releases'))}</h2>${table(t, ['fleet.kind', 'fw.version', 'fw.size', 'fw.uploaded', 'fw.approval', 'SHA-256'], rel, `${tHtml(f, 'fw.nothingUploaded', cli)} <code>POST /api/v1/firmware</code>`)}</section>
<p class="muted">${tHtml(f, 'fw.howto', cli)}</p>`;
}

export function rolloutDetail(r: RolloutView, f: Formatter): string {
  const t = f.t;
  const health = (s: string) =>
    s === 'installed'
      ? 'healthy'
      : s === 'failed'
        ? 'critical'
        : s === 'skipped' || s === 'pending'
          ? 'unknown'
          : 'warning';
  const rows = r.devices
    .map(
      (d) =>
        `<tr><td><a href="/fleet/${h(d.deviceId)}">${h(d.deviceId)}</a></td><td>${d.wave || '—'}</td><td>${badge(health(d.status), translateOr(t, `fwdevice.${d.status}`, d.status))}</td><td>${h(d.reason ?? '')}</td><td>${h(d.fromVersion ?? '—')}</td><td>${timeAgo(f, d.updatedAt)}</td></tr>`,
    )
    .join('');
  const sub = tHtml(
    f,
    'fw.rolloutSub',
    { ago: timeAgo(f, r.createdAt) },
    { size: r.waveSize, pct: Math.round(r.failureThreshold * 100), who: r.createdBy },
  );
  return `<p class="sub">${rolloutBadge(r.status, t)}${r.pausedReason ? ` <span lang="en">${h(r.pausedReason)}</span>` : ''} · ${sub}</p>
${table(t, ['col.device', 'fw.wave', 'device.status', 'device.reason', 'fw.from', 'fw.updated'], rows, h(t('common.none')))}`;
}

/**
 * Upload, approve and roll out in the browser (technician and admin). Forms are `data-tech`
 * (/assets/technician.js posts them with the CSRF token; the upload sends the file's bytes as
 * the API does). Approval is four-eyes: the service refuses the uploader's own.
 */
export function firmwareForms(
  releases: ReleaseRow[],
  rollouts: RolloutRow[],
  units: { id: string; name: string; site: string; kind: string }[],
  can: { write: boolean; approve: boolean },
  f: Formatter,
  result?: string,
): string {
  const t = f.t;
  const kinds = ['biodigester', 'collection_point'] as const;
  const kindName = (k: string) =>
    k === 'biodigester' ? t('tech.kind.biodigester') : t('tech.kind.collectionPoint');
  const upload = can.write
    ? `<section><h2>${h(t('tech.fw.upload'))}</h2><form class="tech-form" method="post" action="/manage/firmware" data-tech data-upload enctype="application/octet-stream">
<label>${h(t('tech.fw.file'))} <input type="file" name="image" required></label>
<label>${h(t('tech.fw.version'))} <input name="version" required maxlength="32" autocomplete="off"></label>
<label>${h(t('tech.fw.kind'))} <select name="deviceKind" required>${kinds.map((k) => `<option value="${k}">${h(kindName(k))}</option>`).join('')}</select></label>
<label>${h(t('tech.fw.hardware'))} <input name="hardwareRevision" maxlength="64" autocomplete="off"></label>
<label>${h(t('tech.fw.notes'))} <textarea name="releaseNotes" maxlength="4000" rows="3"></textarea></label>
<button type="submit">${h(t('tech.fw.uploadSubmit'))}</button></form></section>`
    : '';
  const waiting = releases.filter((r) => !r.approvedBy);
  const approve =
    can.approve && waiting.length
      ? `<section><h2>${h(t('tech.fw.approveTitle'))}</h2><p class="muted">${h(t('tech.fw.fourEyes'))}</p><ul class="plain">${waiting
          .map(
            (r) =>
              `<li><form method="post" action="/manage/firmware/${h(r.sha256)}/approve" data-tech data-confirm="${h(t('tech.fw.approveConfirm', { version: r.version }))}">${h(r.version)} · ${h(kindName(r.deviceKind))} · ${h(r.uploadedBy)} <button type="submit">${h(t('tech.fw.approve'))}</button></form></li>`,
          )
          .join('')}</ul></section>`
      : '';
  const approved = releases.filter((r) => r.approvedBy);
  const rollout =
    can.write && approved.length
      ? `<section><h2>${h(t('tech.fw.rolloutTitle'))}</h2><form class="tech-form" method="post" action="/manage/firmware/rollouts" data-tech data-confirm="${h(t('tech.fw.rolloutConfirm'))}">
<label>${h(t('tech.fw.release'))} <select name="sha256" required>${approved.map((r) => `<option value="${h(r.sha256)}">${h(r.version)} · ${h(kindName(r.deviceKind))}</option>`).join('')}</select></label>
<fieldset><legend>${h(t('tech.fw.target'))}</legend>
<label>${h(t('tech.fw.percent'))} <input name="percent" type="number" min="0.1" max="100" step="any" inputmode="decimal"></label>
<label>${h(t('tech.fw.unit'))} <select name="unitId"><option value="">${h(t('tech.fw.noUnit'))}</option>${units.map((u) => `<option value="${h(u.id)}">${h(u.name)} · ${h(u.site)}</option>`).join('')}</select></label>
<label>${h(t('tech.fw.devices'))} <input name="devices" maxlength="4000" autocapitalize="none" autocomplete="off"></label></fieldset>
<label>${h(t('tech.fw.waveSize'))} <input name="waveSize" type="number" min="1" max="10000" value="10"></label>
<label>${h(t('tech.fw.threshold'))} <input name="failurePercent" type="number" min="0" max="100" value="20"></label>
<label class="check"><input type="checkbox" name="allowDowngrade" value="on"> ${h(t('tech.fw.downgrade'))}</label>
<button type="submit">${h(t('tech.fw.start'))}</button></form></section>`
      : '';
  const live = rollouts.filter((r) => r.status !== 'completed');
  const control =
    can.write && live.length
      ? `<section><h2>${h(t('tech.fw.controlTitle'))}</h2><ul class="plain">${live
          .map((r) => {
            const verb = r.status === 'paused' ? 'resume' : 'pause';
            return `<li><form method="post" action="/manage/firmware/rollouts/${h(r.id)}/${verb}" data-tech data-confirm="${h(t(verb === 'pause' ? 'tech.fw.pauseConfirm' : 'tech.fw.resumeConfirm', { version: r.version }))}">${h(r.version)} · ${h(kindName(r.deviceKind))} <button type="submit">${h(t(verb === 'pause' ? 'tech.fw.pause' : 'tech.fw.resume'))}</button></form></li>`;
          })
          .join('')}</ul></section>`
      : '';
  const note = result ? `<p class="notice status" role="status">${h(result)}</p>` : '';
  return `<div class="tech-firmware" id="manage-firmware">${note}${upload}${approve}${rollout}${control}</div>`;
}
