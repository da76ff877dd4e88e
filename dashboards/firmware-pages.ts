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
