import type { Command } from 'commander';
import type { Config } from '../config/index.ts';
import { deviceKinds, type DeviceKind } from '../devices/metrics.ts';
import { CliError } from './errors.ts';
import { output, withCli } from './context.ts';

function kindOption(value: string): DeviceKind {
  if (!(deviceKinds as readonly string[]).includes(value))
    throw new CliError(`kind must be one of ${deviceKinds.join(', ')}`);
  return value as DeviceKind;
}

function labelsOption(
  value: string,
  previous: Record<string, string> = {},
): Record<string, string> {
  const [k, v] = value.split('=');
  if (!k || v === undefined) throw new CliError(`labels are key=value (got "${value}")`);
  return { ...previous, [k]: v };
}

/** `thamani site|unit|device …`: the registry, for technicians. */
export function registerDeviceCommands(program: Command, config: () => Config): void {
  const site = program.command('site').description('sites (institutions, e.g. a school kitchen)');
  site
    .command('add <name>')
    .option('--county <county>')
    .option('--json')
    .description('register a site')
    .action((name: string, o: { county?: string; json?: boolean }) =>
      withCli(config(), async ({ devices, actor }) => {
        const s = await devices.addSite({ name, county: o.county }, actor);
        output(
          o.json,
          { site: s },
          () =>
            `Site "${s.name}" added (${s.id}).\nNext: thamani unit add "${s.name}" "Digester 1" --kind biodigester`,
        );
      }),
    );
  site
    .command('list')
    .option('--json')
    .action((o: { json?: boolean }) =>
      withCli(config(), async ({ devices }) => {
        const sites = await devices.listSites();
        output(o.json, { sites }, () =>
          sites.length
            ? sites.map((s) => `${s.name.padEnd(32)} ${s.county ?? ''}  ${s.id}`).join('\n')
            : 'No sites yet: thamani site add "<name>"',
        );
      }),
    );

  const unit = program
    .command('unit')
    .description('units at a site: biodigesters and collection points');
  unit
    .command('add <site> <name>')
    .requiredOption('--kind <kind>', deviceKinds.join(' | '), kindOption)
    .option('--json')
    .description('add a unit to a site (site by name or id)')
    .action((siteRef: string, name: string, o: { kind: DeviceKind; json?: boolean }) =>
      withCli(config(), async ({ devices, actor }) => {
        const u = await devices.addUnit({ site: siteRef, kind: o.kind, name }, actor);
        output(
          o.json,
          { unit: u },
          () =>
            `Unit "${u.name}" (${u.kind}) added (${u.id}).\nNext: thamani device add --unit "${u.name}" --site "${siteRef}"`,
        );
      }),
    );
  unit
    .command('list')
    .option('--site <site>')
    .option('--json')
    .action((o: { site?: string; json?: boolean }) =>
      withCli(config(), async ({ devices }) => {
        const units = await devices.listUnits(o.site ? { site: o.site } : {});
        output(
          o.json,
          { units },
          () =>
            units.map((u) => `${u.name.padEnd(24)} ${u.kind.padEnd(17)} ${u.id}`).join('\n') ||
            'No units.',
        );
      }),
    );

  const device = program.command('device').description('the device registry');
  device
    .command('add')
    .requiredOption('--unit <unit>', 'unit name or id')
    .option('--site <site>', 'site, when the unit name is not unique')
    .option('--id <id>', 'device id (default: generated)')
    .option('--label <key=value>', 'label (repeatable)', labelsOption)
    .option('--hardware <revision>')
    .option('--json')
    .description('register a device (status pending until its first connection)')
    .action(
      (o: {
        unit: string;
        site?: string;
        id?: string;
        label?: Record<string, string>;
        hardware?: string;
        json?: boolean;
      }) =>
        withCli(config(), async ({ devices, actor }) => {
          const d = await devices.addDevice(
            {
              id: o.id,
              unit: o.unit,
              site: o.site,
              labels: o.label ?? {},
              hardwareRevision: o.hardware,
            },
            actor,
          );
          output(
            o.json,
            { device: d },
            () =>
              `Device ${d.id} (${d.kind}) registered, status ${d.status}.\nNext: thamani device token ${d.id}   (a one-time enrolment token for it)`,
          );
        }),
    );
  device
    .command('list')
    .option('--site <site>')
    .option('--unit <unit>')
    .option('--status <status>')
    .option('--json')
    .action(
      (o: {
        site?: string;
        unit?: string;
        status?: 'pending' | 'active' | 'suspended' | 'retired';
        json?: boolean;
      }) =>
        withCli(config(), async ({ devices }) => {
          const list = await devices.list(o);
          output(
            o.json,
            { devices: list },
            () =>
              list
                .map(
                  (d) =>
                    `${d.id.padEnd(20)} ${d.kind.padEnd(17)} ${d.status.padEnd(10)} ${d.online ? 'online ' : 'offline'} ${d.siteName} / ${d.unitName}`,
                )
                .join('\n') || 'No devices.',
          );
        }),
    );
  device
    .command('show <id>')
    .option('--json')
    .action((id: string, o: { json?: boolean }) =>
      withCli(config(), async ({ devices, pki }) => {
        const d = await devices.get(id);
        const certs = await pki.listCertificates({ deviceId: id });
        output(o.json, { device: d, certificates: certs }, () =>
          [
            `${d.id}  ${d.kind}  status ${d.status}  ${d.online ? 'online' : 'offline'}  last seen ${d.lastSeenAt?.toISOString() ?? 'never'}`,
            `firmware ${d.firmwareVersion ?? '-'}  labels ${JSON.stringify(d.labels)}${d.rotationRequested ? '  rotation requested' : ''}`,
            'certificates:',
            ...certs.map(
              (c) =>
                `  ${c.serial}  ${c.status.padEnd(8)} expires ${c.notAfter.toISOString()}  sha256 ${c.fingerprintSha256}`,
            ),
          ].join('\n'),
        );
      }),
    );
  device
    .command('token <id>')
    .option('--json')
    .description('a one-time enrolment token (shown once)')
    .action((id: string, o: { json?: boolean }) =>
      withCli(config(), async ({ pki, actor, config: cfg }) => {
        const t = await pki.createEnrolmentToken(id, actor);
        output(
          o.json,
          t,
          () =>
            `Enrolment token for ${id} (valid until ${t.expiresAt}, works once, shown only now):\n\n  ${t.token}\n\nOn the device: make a key and a CSR with CN=${id}, then\n  curl --cacert ca.pem https://${cfg.publicHostname}:${cfg.https.port}/api/v1/enroll -H 'content-type: application/json' -d '{"token":"${t.token}","csr":"<PEM>"}'\n(docs/device-contract.md has the full example).`,
        );
      }),
    );
  device
    .command('reset-seq <id>')
    .option('--json')
    .description(
      "after the device's seq counter restarted (factory reset): the gateway forgets its seq; its next reading sets the baseline",
    )
    .action((id: string, o: { json?: boolean }) =>
      withCli(config(), async ({ devices, actor }) => {
        const d = await devices.resetSequence(id, actor);
        output(
          o.json,
          { device: d },
          () =>
            `The gateway forgets the seq of ${d.id}: its next reading sets the baseline. Replay what was quarantined as SEQ_REGRESSION meanwhile with \`thamani quarantine replay <id>\`.`,
        );
      }),
    );
  for (const [verb, status] of [
    ['suspend', 'suspended'],
    ['activate', 'active'],
    ['retire', 'retired'],
  ] as const) {
    device
      .command(`${verb} <id>`)
      .option('--json')
      .description(
        `set the device ${status}${status !== 'active' ? ' (its live session is cut at once)' : ''}`,
      )
      .action((id: string, o: { json?: boolean }) =>
        withCli(config(), async ({ devices, actor }) => {
          const d = await devices.setStatus(id, status, actor);
          output(o.json, { device: d }, () => `Device ${d.id} is now ${d.status}.`);
        }),
      );
  }
}
