import type { Command } from 'commander';
import type { Config } from '../config/index.ts';
import { CliError } from '../cli/errors.ts';
import { output, withCli, type CliContext } from '../cli/context.ts';

/**
 * `thamani device config get|set|defaults` and `thamani device command`: remote configuration
 * and commands for technicians (docs/operations.md, "Remote configuration"). Changes reach the
 * running gateway through pg_notify and are audited as `cli:<os user>`.
 */

/** `a.b.c=value` pairs into an object; a value is JSON when it parses (numbers), text otherwise. */
export function assignments(pairs: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0)
      throw new CliError(`settings are key=value, e.g. reportingIntervalS=60 (got "${pair}")`);
    const keys = pair.slice(0, eq).split('.');
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      /* text, e.g. a host name */
    }
    let node = out;
    for (const k of keys.slice(0, -1)) {
      if (k === '__proto__' || k === 'constructor' || k === 'prototype')
        throw new CliError(`"${k}" is not a setting`);
      const next = node[k];
      node = (node[k] = next && typeof next === 'object' ? next : {}) as Record<string, unknown>;
    }
    node[keys.at(-1)!] = value;
  }
  return out;
}

/** The overrides with `patch` laid over them (per metric for calibration and alarms). */
function merged(overrides: Record<string, unknown>, patch: Record<string, unknown>) {
  const out: Record<string, unknown> = { ...overrides };
  for (const [k, v] of Object.entries(patch)) {
    const before = out[k];
    out[k] =
      (k === 'calibration' || k === 'alarms') &&
      before &&
      typeof before === 'object' &&
      v &&
      typeof v === 'object'
        ? Object.fromEntries(
            [...new Set([...Object.keys(before), ...Object.keys(v)])].map((m) => [
              m,
              { ...(before as Record<string, object>)[m], ...(v as Record<string, object>)[m] },
            ]),
          )
        : v;
  }
  return out;
}

async function services(ctx: CliContext) {
  const [{ createAuditLog }, { createDeviceConfigService, createCommandService }] =
    await Promise.all([import('../audit/index.ts'), import('./index.ts')]);
  const audit = createAuditLog({ db: ctx.db, signer: ctx.auditSigner });
  return {
    config: createDeviceConfigService({ db: ctx.db, audit }),
    commands: createCommandService({ db: ctx.db, audit }),
  };
}

export function registerDeviceConfigCommands(program: Command, config: () => Config): void {
  const device = program.commands.find((c) => c.name() === 'device') ?? program.command('device');
  const cfg = device.command('config').description('remote configuration (desired and reported)');
  cfg
    .command('get <id>')
    .option('--json')
    .description('desired vs reported configuration, and whether the device is in sync')
    .action((id: string, o: { json?: boolean }) =>
      withCli(config(), async (ctx) => {
        const v = await (await services(ctx)).config.get(id);
        output(o.json, { config: v }, () =>
          [
            `${v.deviceId}: ${v.status.replace('_', ' ')} (desired v${v.desiredVersion}, reported ${v.reportedVersion === null ? '—' : `v${v.reportedVersion}`})`,
            ...(v.status === 'rejected' ? [`rejected by the device: ${v.rejectReason ?? ''}`] : []),
            `desired: ${JSON.stringify(v.desired)}`,
            `overrides: ${JSON.stringify(v.overrides)}`,
          ].join('\n'),
        );
      }),
    );
  cfg
    .command('set <id> <settings...>')
    .option('--replace', 'replace the overrides instead of adding to them')
    .option('--json')
    .description(
      'set overrides, e.g. reportingIntervalS=60 calibration.ph.offset=0.1 calibration.ph.gain=1 alarms.temperature_c.max=60 timeSyncServer=pool.ntp.org',
    )
    .action((id: string, settings: string[], o: { replace?: boolean; json?: boolean }) =>
      withCli(config(), async (ctx) => {
        const s = await services(ctx);
        const patch = assignments(settings);
        const base = o.replace ? {} : (await s.config.get(id)).overrides;
        const v = await s.config.setOverrides(id, merged(base, patch), ctx.actor);
        output(
          o.json,
          { config: v },
          () =>
            `${id}: desired version ${v.desiredVersion} (${v.status.replace('_', ' ')}); sent when the device is connected`,
        );
      }),
    );
  cfg
    .command('defaults <kind> <settings...>')
    .option('--unit <unitId>', 'defaults of one unit (uuid) instead of the whole kind')
    .option('--json')
    .description('defaults of a device kind or unit (replaced whole), e.g. reportingIntervalS=300')
    .action((kind: string, settings: string[], o: { unit?: string; json?: boolean }) =>
      withCli(config(), async (ctx) => {
        if (kind !== 'biodigester' && kind !== 'collection_point')
          throw new CliError('kind must be biodigester or collection_point');
        const out = await (
          await services(ctx)
        ).config.setDefaults({ kind, unitId: o.unit ?? null }, assignments(settings), ctx.actor);
        output(
          o.json,
          out,
          () => `defaults set; ${out.changed.length} device(s) get a new version`,
        );
      }),
    );

  device
    .command('command <id> <command>')
    .option(
      '--since <time>',
      'resend: readings from this instant (RFC 3339, e.g. 2026-11-30T08:00:00+03:00)',
    )
    .option(
      '--timeout <seconds>',
      'how long the command waits for the device (default 3600)',
      Number,
    )
    .option('--json')
    .description(
      'send reboot, resend --since <time> or diagnostics; it waits for an offline device until its time-out',
    )
    .action(
      (id: string, command: string, o: { since?: string; timeout?: number; json?: boolean }) =>
        withCli(config(), async (ctx) => {
          const row = await (
            await services(ctx)
          ).commands.create(
            id,
            {
              command,
              ...(o.since !== undefined ? { since: o.since } : {}),
              ...(o.timeout !== undefined ? { timeoutS: o.timeout } : {}),
            },
            ctx.actor,
          );
          output(
            o.json,
            {
              command: {
                id: row.id,
                command: row.command,
                params: row.params,
                status: row.status,
                expiresAt: row.expires_at.toISOString(),
              },
            },
            () =>
              `${row.command} for ${id}: id ${row.id}, waits until ${row.expires_at.toISOString()}\nResult: thamani device command-result ${row.id}`,
          );
        }),
    );
  device
    .command('command-result <commandId>')
    .option('--json')
    .description('a command and its result (ok, error, timed_out)')
    .action((commandId: string, o: { json?: boolean }) =>
      withCli(config(), async (ctx) => {
        const row = await (await services(ctx)).commands.get(commandId);
        const view = {
          id: row.id,
          deviceId: row.device_id,
          command: row.command,
          status: row.status,
          result: row.result,
          error: row.error,
          expiresAt: row.expires_at.toISOString(),
          // When the device acknowledged it (PUBACK); null: it never reached the device.
          sentAt: row.sent_at?.toISOString() ?? null,
        };
        const state =
          row.status === 'pending'
            ? 'pending (not delivered: the device has not acknowledged it)'
            : row.status === 'sent'
              ? `sent (delivered ${row.sent_at?.toISOString() ?? ''}, no result yet)`
              : row.status;
        output(
          o.json,
          { command: view },
          () =>
            `${row.command} → ${state}${row.error ? `: ${row.error}` : ''}${row.result ? `\n${JSON.stringify(row.result)}` : ''}`,
        );
      }),
    );
}
