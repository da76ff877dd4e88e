import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { AuditLog } from '../audit/index.ts';
import { output, withCli, type CliContext } from '../cli/context.ts';
import { CliError } from '../cli/errors.ts';
import type { Config } from '../config/index.ts';
import type { Queryable } from '../db/timeseries.ts';
import { deviceKinds, type DeviceKind } from '../devices/metrics.ts';
import type { FirmwareRegistry, RolloutTarget } from './firmware-registry.ts';

/**
 * `thamani firmware upload|list|approve|rollout|status|pause|resume`: the registry from a
 * technician's terminal, on the database directly (audited as `cli:<os user>`). A running
 * gateway sends the manifests of a new rollout on its next pass (within a minute).
 */
export function registerFirmwareCommands(program: Command, config: () => Config): void {
  const fw = program
    .command('firmware')
    .description('signed firmware: images, approvals, rollouts');
  const run = <T>(
    fn: (
      q: Queryable,
      record: AuditLog['record'],
      ctx: CliContext,
      registry: FirmwareRegistry,
    ) => Promise<T>,
  ) =>
    withCli(config(), async (ctx) => {
      const [{ createAuditLog }, { asQueryable, runScoped }, { createFirmwareRegistry }] =
        await Promise.all([
          import('../audit/index.ts'),
          import('../db/scoped.ts'),
          import('./firmware-registry.ts'),
        ]);
      const audit = createAuditLog({ db: ctx.db, signer: ctx.auditSigner });
      const registry = createFirmwareRegistry(ctx.config.firmware);
      // One transaction: the change and its audit entry commit together.
      return runScoped(
        ctx.db,
        { kind: 'trusted', actorId: ctx.actor.actorId, role: 'system' },
        (tx) => fn(asQueryable(tx), (entry) => audit.record(entry, tx), ctx, registry),
      );
    });

  fw.command('upload <file>')
    .description(
      'store an image (immutable; needs a second person to approve before it can roll out)',
    )
    .requiredOption('--version <x.y.z>', 'the firmware version')
    .requiredOption('--kind <kind>', deviceKinds.join(' | '))
    .option('--hardware-revision <rev>', 'only for this hardware revision')
    .option('--notes <text>', 'release notes')
    .option('--json')
    .action(
      async (
        file: string,
        o: {
          version: string;
          kind: string;
          hardwareRevision?: string;
          notes?: string;
          json?: boolean;
        },
      ) => {
        if (!(deviceKinds as readonly string[]).includes(o.kind))
          throw new CliError(`--kind must be one of ${deviceKinds.join(', ')}`, 64);
        const image = await readFile(file).catch((err: NodeJS.ErrnoException) => {
          throw new CliError(`cannot read ${file}: ${err.code ?? err.message}`, 66);
        });
        const made = await run((q, record, ctx, registry) => {
          if (image.length > ctx.config.firmware.maxImageBytes)
            throw new CliError(
              `${file} is ${image.length} bytes; FIRMWARE_MAX_BYTES is ${ctx.config.firmware.maxImageBytes}`,
              65,
            );
          return registry.upload(
            q,
            {
              image,
              version: o.version,
              deviceKind: o.kind as DeviceKind,
              hardwareRevision: o.hardwareRevision,
              releaseNotes: o.notes,
            },
            ctx.actor,
            record,
          );
        });
        output(
          o.json,
          made,
          () =>
            `stored ${made.deviceKind} ${made.version} (${made.size} bytes)\nsha256 ${made.sha256}${made.approvalRequired ? '\nnext: another technician or an admin approves it (thamani firmware approve, or the API)' : ''}`,
        );
      },
    );

  fw.command('list')
    .option('--json')
    .action(async (o: { json?: boolean }) => {
      const images = await run((q, _record, _ctx, registry) => registry.list(q));
      output(
        o.json,
        { images },
        () =>
          images
            .map(
              (i) =>
                `${i.deviceKind.padEnd(17)} ${i.version.padEnd(9)} ${String(i.size).padStart(9)} B  ${i.approvedBy ? `approved by ${i.approvedBy}` : 'NOT APPROVED'}  ${i.sha256}`,
            )
            .join('\n') || 'No firmware uploaded.',
      );
    });

  fw.command('approve <sha256>')
    .description('approve a release someone else uploaded')
    .option('--json')
    .action(async (sha256: string, o: { json?: boolean }) => {
      const done = await run((q, record, ctx, registry) =>
        registry.approve(q, sha256, ctx.actor, record),
      );
      output(o.json, done, () => `approved ${done.sha256}`);
    });

  fw.command('rollout <sha256>')
    .description(
      'roll an approved image out in waves: to --devices, a --unit, a --site, or --percent of its kind',
    )
    .option('--devices <ids>', 'comma-separated device ids')
    .option('--unit <unit>', 'a unit, by name or id')
    .option('--site <site>', 'a site by name or id (or the site of --unit)')
    .option('--percent <n>', "a share of the kind's active devices", Number)
    .option('--wave-size <n>', 'devices per wave', (v) => Number.parseInt(v, 10), 10)
    .option(
      '--failure-threshold <share>',
      'pause when more than this share has failed (0-1)',
      Number,
      0.2,
    )
    .option('--allow-downgrade', 'also devices running the same or a newer version')
    .option('--json')
    .action(
      async (
        sha256: string,
        o: {
          devices?: string;
          unit?: string;
          site?: string;
          percent?: number;
          waveSize: number;
          failureThreshold: number;
          allowDowngrade?: boolean;
          json?: boolean;
        },
      ) => {
        const chosen = [
          o.devices,
          o.percent !== undefined ? 'percent' : undefined,
          o.unit ?? (o.site ? 'site' : undefined),
        ].filter(Boolean);
        if (chosen.length !== 1)
          throw new CliError(
            'choose one target: --devices, --unit (with --site if the name is not unique), --site, or --percent',
            64,
          );
        if (!(o.waveSize >= 1) || !(o.failureThreshold >= 0 && o.failureThreshold <= 1))
          throw new CliError('--wave-size is at least 1, --failure-threshold between 0 and 1', 64);
        const [{ firmwareRepo }, { deviceRepo }] = await Promise.all([
          import('./firmware-repo.ts'),
          import('../devices/device-repo.ts'),
        ]);
        const made = await run(async (q, record, ctx, registry) => {
          let target: RolloutTarget;
          if (o.devices)
            target = {
              devices: o.devices
                .split(',')
                .map((d) => d.trim())
                .filter(Boolean),
            };
          else if (o.percent !== undefined) {
            target = {
              kind:
                ((await firmwareRepo.imageKind(q, sha256)) as DeviceKind | undefined) ??
                'biodigester',
              percent: o.percent,
            };
          } else {
            const rows = await deviceRepo.unitsAt(q, o.unit ?? null, o.site ?? null);
            if (rows.length === 0)
              throw new CliError(
                `no ${o.unit ? `unit ${o.unit}` : `site ${o.site}`}${o.unit && o.site ? ` at ${o.site}` : ''}`,
                1,
              );
            if (o.unit && rows.length > 1)
              throw new CliError(
                `unit name ${o.unit} is used at ${rows.map((r) => r.site).join(', ')}: add --site`,
                64,
              );
            target = o.unit ? { unitId: rows[0]!.id } : { siteId: rows[0]!.site_id };
          }
          return registry.createRollout(
            q,
            {
              sha256,
              target,
              waveSize: o.waveSize,
              failureThreshold: o.failureThreshold,
              allowDowngrade: o.allowDowngrade ?? false,
            },
            ctx.actor,
            record,
          );
        });
        output(
          o.json,
          made,
          () =>
            `rollout ${made.id}: ${made.version} to ${made.devices} device(s) in ${made.waves} wave(s) of ${made.waveSize}${made.skipped.length ? `; skipped ${made.skipped.map((s) => `${s.deviceId} (${s.reason})`).join(', ')}` : ''}\nthe running gateway sends the first wave within a minute; follow it with thamani firmware status ${made.id}`,
        );
      },
    );

  fw.command('status <rolloutId>')
    .option('--json')
    .action(async (id: string, o: { json?: boolean }) => {
      const r = await run((q, _record, _ctx, registry) => registry.rollout(q, id));
      output(o.json, { ...r }, () =>
        [
          `rollout ${id}: ${r.status}${r.pausedReason ? ` (${r.pausedReason})` : ''}, version ${r.version}`,
          ...r.devices.map(
            (d) =>
              `  wave ${d.wave}  ${d.deviceId.padEnd(20)} ${d.status}${d.reason ? `  ${d.reason}` : ''}`,
          ),
        ].join('\n'),
      );
    });

  for (const [verb, to] of [
    ['pause', 'paused'],
    ['resume', 'active'],
  ] as const) {
    fw.command(`${verb} <rolloutId>`)
      .description(`${verb} a rollout`)
      .action(async (id: string) => {
        await run((q, record, ctx, registry) =>
          registry.setRolloutStatus(q, id, to, ctx.actor, record),
        );
        process.stdout.write(`rollout ${id} ${to}\n`);
      });
  }
}
