import { badge, h } from '../dashboards/html.ts';
import type { Formatter } from '../dashboards/format-fns.ts';
import { asQueryable, type DbExecutor } from '../db/scoped.ts';
import { syncStatus, type DeviceConfig } from './config-fns.ts';
import { configRepo, type CommandRow, type ConfigRow } from './config-repo.ts';

/** What the device page shows of remote configuration: desired vs reported, status, commands. */
export interface ConfigPanel {
  deviceId: string;
  row: ConfigRow | undefined;
  reported: DeviceConfig | undefined;
  commands: CommandRow[];
}

/** In the page's scoped transaction (row-level security: fleet roles see it, nobody else). */
export async function deviceConfigPanel(tx: DbExecutor, deviceId: string): Promise<ConfigPanel> {
  const q = asQueryable(tx);
  const row = await configRepo.row(q, deviceId);
  const reported =
    row?.reported_version != null
      ? await configRepo.versionConfig(q, deviceId, row.reported_version)
      : undefined;
  return { deviceId, row, reported, commands: await configRepo.commands(q, deviceId, 10) };
}

function configCell(c: DeviceConfig | undefined, f: Formatter): string {
  if (!c) return h(f.t('devconfig.none'));
  const cal = Object.entries(c.calibration)
    .map(
      ([m, v]) =>
        `<code>${h(m)}</code> ×${v ? h(String(v.gain)) : ''} ${v && v.offset >= 0 ? '+' : ''}${v ? h(String(v.offset)) : ''}`,
    )
    .join('<br>');
  const alarms = Object.entries(c.alarms)
    .map(
      ([m, v]) => `<code>${h(m)}</code> ${h(String(v?.min ?? '…'))} – ${h(String(v?.max ?? '…'))}`,
    )
    .join('<br>');
  const row = (label: string, value: string) => `<div><dt>${h(label)}</dt><dd>${value}</dd></div>`;
  return `<dl class="status">${row(f.t('devconfig.interval'), h(f.t('devconfig.seconds', { n: c.reportingIntervalS })))}${row(f.t('devconfig.timeSync'), `<code>${h(c.timeSyncServer)}</code>`)}${row(f.t('devconfig.calibration'), cal || '—')}${row(f.t('devconfig.alarms'), alarms || '—')}</dl>`;
}

export function deviceConfigSection(p: ConfigPanel, f: Formatter): string {
  const r = p.row;
  const status = r
    ? syncStatus({
        desiredVersion: r.desired_version,
        reportedVersion: r.reported_version,
        rejectedVersion: r.rejected_version,
      })
    : 'pending';
  const health = status === 'in_sync' ? 'healthy' : status === 'rejected' ? 'critical' : 'warning';
  const rejected =
    status === 'rejected' && r
      ? `<p class="muted" data-config-rejected>${h(f.t('devconfig.rejectedBecause', { version: r.desired_version, reason: r.reject_reason ?? '' }))}</p>`
      : '';
  const commands = p.commands
    .map(
      (c) =>
        `<tr data-command="${h(c.id)}"><td>${h(f.t(`devconfig.cmd.${c.command}`))}</td><td>${h(f.t(`devconfig.cmdStatus.${c.status}`))}</td><td>${h(f.dateTime(c.created_at))}</td><td>${h(f.dateTime(c.expires_at))}</td><td><code>${h(c.error ?? (c.result ? JSON.stringify(c.result).slice(0, 200) : ''))}</code></td></tr>`,
    )
    .join('');
  return `<section data-config-status="${status}"><h2>${h(f.t('devconfig.title'))} ${badge(health, f.t(`devconfig.status.${status}`))}</h2>${rejected}
<div class="table-wrap" tabindex="0" role="region" aria-label="${h(f.t('devconfig.desired'))}"><table><thead><tr><th scope="col">${h(f.t('devconfig.desired'))} · ${h(f.t('devconfig.version', { version: r?.desired_version ?? 0 }))}</th><th scope="col">${h(f.t('devconfig.reported'))} · ${r?.reported_version != null ? h(f.t('devconfig.version', { version: r.reported_version })) : h(f.t('devconfig.none'))}</th></tr></thead>
<tbody><tr><td>${configCell(r?.desired, f)}</td><td>${configCell(p.reported, f)}</td></tr></tbody></table></div>
<h3>${h(f.t('devconfig.commands'))}</h3><div class="table-wrap" tabindex="0" role="region" aria-label="${h(f.t('devconfig.commands'))}"><table><thead><tr><th scope="col">${h(f.t('devconfig.col.command'))}</th><th scope="col">${h(f.t('devconfig.col.status'))}</th><th scope="col">${h(f.t('devconfig.col.sent'))}</th><th scope="col">${h(f.t('devconfig.col.expires'))}</th><th scope="col">${h(f.t('devconfig.col.result'))}</th></tr></thead><tbody>${commands || `<tr><td colspan="5" class="empty">${h(f.t('devconfig.noCommands'))}</td></tr>`}</tbody></table></div>
<p class="muted"><code>${h(f.t('devconfig.howto', { id: p.deviceId }))}</code></p></section>`;
}
