import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { CliError } from '../cli/errors.ts';
import type { Config } from '../config/index.ts';
import { faultNames, type Fault } from './faults.ts';
import { withDatabase } from '../cli/context.ts';
import { deviceKeyTypes, type DeviceKeyType } from './key-types.ts';

interface SimulateOptions {
  digesters: number;
  collectionPoints: number;
  duration?: number;
  interval: number;
  speed: number;
  seed: number;
  token?: string;
  api?: string;
  mqtt?: string;
  ca?: string;
  faults?: string;
  site: string;
  key: string;
  json?: boolean;
}

const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new CliError(`not a number: ${v}`);
  return n;
};

/** `thamani simulate` (and `npm run sim`): a fleet of simulated devices against a running gateway. */
export function registerSimulateCommands(program: Command, config: () => Config): void {
  program
    .command('simulate')
    .description(
      'run simulated digesters and collection points against a running gateway (enrols them on first run)',
    )
    .option('--digesters <n>', 'simulated biodigesters', int, 5)
    .option('--collection-points <n>', 'simulated collection points', int, 5)
    .option(
      '--duration <seconds>',
      'stop after this long and print the report (default: until Ctrl-C)',
      int,
    )
    .option(
      '--interval <seconds>',
      "seconds between readings of one device (5 to 86400), set as the desired configuration of the fleet's units: a device's own configuration wins",
      int,
      5,
    )
    .option('--speed <x>', 'simulated seconds per real second for the physics', int, 60)
    .option('--seed <n>', 'random seed (same seed, same fleet)', int, 1)
    .option(
      '--token <token>',
      'API token with the technician role (thamani user token sim --role technician)',
    )
    .option('--api <url>', 'operator API (default https://THAMANI_PUBLIC_HOSTNAME:HTTPS_PORT)')
    .option('--mqtt <url>', 'broker (default mqtts://THAMANI_PUBLIC_HOSTNAME:MQTT_PORT)')
    .option('--ca <file>', 'root CA certificate (default: the local PKI)')
    .option('--faults <list>', `comma-separated: ${faultNames.join(', ')}, or all`)
    .option('--site <name>', 'site the simulated units belong to', 'Simulated School')
    .option(
      '--key <type>',
      `key a device makes when it first enrols: ${deviceKeyTypes.join(' or ')} (ec = ECDSA P-256, rsa = RSA 2048)`,
      'ec',
    )
    .option('--json', 'print the report as one JSON object')
    .action(async (o: SimulateOptions) => {
      const cfg = config();
      const token = o.token;
      if (!token)
        throw new CliError(
          '--token is required: create one with `thamani user token sim --role technician`',
        );
      const faults = new Set<Fault>(
        o.faults === 'all' ? faultNames : ((o.faults?.split(',').filter(Boolean) ?? []) as Fault[]),
      );
      for (const f of faults)
        if (!(faultNames as readonly string[]).includes(f))
          throw new CliError(`unknown fault "${f}": ${faultNames.join(', ')}`);
      if (!Number.isInteger(o.interval) || o.interval < 5 || o.interval > 86_400)
        throw new CliError(
          `--interval ${o.interval}: a reporting interval is a whole number of seconds from 5 to 86400 (docs/device-contract.md, "Configuration")`,
        );
      if (!(deviceKeyTypes as readonly string[]).includes(o.key))
        throw new CliError(`unknown key type "${o.key}": ${deviceKeyTypes.join(' or ')}`);
      const ca = readFileSync(o.ca ?? path.join(cfg.pki.dir, 'root.crt'), 'utf8');
      const [{ createApiClient }, { missingFromReadings, runFleet }] = await Promise.all([
        import('./api-client.ts'),
        import('./fleet.ts'),
      ]);
      await withDatabase(cfg, async (rt) => {
        let stopRequested: () => void = () => undefined;
        const stop = new Promise<void>((r) => (stopRequested = r));
        process.once('SIGINT', () => stopRequested());
        const tty = process.stderr.isTTY;
        const report = await runFleet(
          {
            digesters: o.digesters,
            collectionPoints: o.collectionPoints,
            durationMs: o.duration !== undefined ? o.duration * 1000 : undefined,
            intervalS: o.interval,
            speed: o.speed,
            seed: o.seed,
            stateDir: path.join(cfg.dataDir, 'sim'),
            site: o.site,
            mqttUrl: o.mqtt ?? `mqtts://${cfg.publicHostname}:${cfg.mqtt.port}`,
            ca,
            api: createApiClient({
              baseUrl: o.api ?? `https://${cfg.publicHostname}:${cfg.https.port}`,
              token,
              ca,
            }),
            faults,
            keyType: o.key as DeviceKeyType,
            onProgress: (line) => process.stderr.write(tty ? `\r${line}   ` : `${line}\n`),
            checkStored: missingFromReadings(rt.database.pool),
          },
          stop,
        );
        if (tty) process.stderr.write('\n');
        if (o.json) process.stdout.write(`${JSON.stringify(report)}\n`);
        else {
          process.stdout.write(
            [
              `devices ${report.devices} (connected at the end: ${report.connected})`,
              `readings sent ${report.sent}, acknowledged ${report.acknowledged}, still in outboxes ${report.pendingInOutboxes}`,
              `rejected by reason: ${JSON.stringify(report.rejectedByReason)}`,
              `refused connections: ${report.refusedConnections}; faults injected: ${JSON.stringify(report.faultsInjected)}`,
              `every acknowledged reading stored: ${report.missingFromDatabase === 0 ? 'yes' : `NO, ${report.missingFromDatabase} missing`}`,
            ].join('\n') + '\n',
          );
        }
        if (report.missingFromDatabase !== 0) process.exitCode = 1;
      });
    });
}
