import type { RolloutView } from '../firmware/firmware-registry.ts';
import type { Formatter } from './format-fns.ts';
import { badge, h, timeAgo } from './html.ts';

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

const rolloutBadge = (status: string) =>
  badge(status === 'paused' ? 'critical' : status === 'active' ? 'warning' : 'healthy', status);

export function firmwareOverview(
  releases: ReleaseRow[],
  rollouts: RolloutRow[],
  f: Formatter,
): string {
  const rel = releases
    .map(
      (r) =>
        `<tr><td>${h(r.deviceKind.replace('_', ' '))}</td><td>${h(r.version)}</td><td>${(r.size / 1024).toFixed(0)} KB</td><td>${h(r.uploadedBy)}<br><small>${h(f.dateTime(r.uploadedAt))}</small></td><td>${r.approvedBy ? `${badge('healthy', 'approved')} ${h(r.approvedBy)}` : badge('warning', 'awaiting approval')}</td><td><code>${h(r.sha256.slice(0, 12))}…</code></td></tr>`,
    )
    .join('');
  const outs = rollouts
    .map(
      (r) =>
        `<tr><td><a href="/firmware/rollouts/${h(r.id)}">${h(r.version)} · ${h(r.deviceKind.replace('_', ' '))}</a><br><small>${timeAgo(f, r.createdAt)}</small></td><td>${rolloutBadge(r.status)}${r.pausedReason ? `<br><small>${h(r.pausedReason)}</small>` : ''}</td><td><meter min="0" max="${r.total}" value="${r.installed}">${r.installed}</meter> ${r.installed}/${r.total}</td><td>${r.failed > 0 ? badge('critical', String(r.failed)) : '0'}</td><td>${r.waiting}</td></tr>`,
    )
    .join('');
  return `<section><h2>Rollouts</h2><div class="table-wrap" tabindex="0" role="region" aria-label="Table (scrolls sideways)"><table><thead><tr><th scope="col">Release</th><th scope="col">Status</th><th scope="col">Installed</th><th scope="col">Failed</th><th scope="col">Waiting</th></tr></thead><tbody>${outs || '<tr><td colspan="5" class="empty">No rollouts yet.</td></tr>'}</tbody></table></div></section>
<section><h2>Releases</h2><div class="table-wrap" tabindex="0" role="region" aria-label="Table (scrolls sideways)"><table><thead><tr><th scope="col">Kind</th><th scope="col">Version</th><th scope="col">Size</th><th scope="col">Uploaded</th><th scope="col">Approval</th><th scope="col">SHA-256</th></tr></thead><tbody>${rel || '<tr><td colspan="6" class="empty">Nothing uploaded. <code>npx thamani firmware upload</code> or POST /api/v1/firmware.</td></tr>'}</tbody></table></div></section>
<p class="muted">Upload, approve and roll out with the API or <code>thamani firmware</code> (docs/operations.md, “Firmware updates”).</p>`;
}

export function rolloutDetail(r: RolloutView, f: Formatter): string {
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
        `<tr><td><a href="/fleet/${h(d.deviceId)}">${h(d.deviceId)}</a></td><td>${d.wave || '—'}</td><td>${badge(health(d.status), d.status)}</td><td>${h(d.reason ?? '')}</td><td>${h(d.fromVersion ?? '—')}</td><td>${timeAgo(f, d.updatedAt)}</td></tr>`,
    )
    .join('');
  return `<p class="sub">${rolloutBadge(r.status)}${r.pausedReason ? ` ${h(r.pausedReason)}` : ''} · waves of ${r.waveSize} · pauses past ${Math.round(r.failureThreshold * 100)} % failed · by ${h(r.createdBy)} ${timeAgo(f, r.createdAt)}</p>
<div class="table-wrap" tabindex="0" role="region" aria-label="Table (scrolls sideways)"><table><thead><tr><th scope="col">Device</th><th scope="col">Wave</th><th scope="col">Status</th><th scope="col">Reason</th><th scope="col">From</th><th scope="col">Updated</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}
