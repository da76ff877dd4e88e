import type { Command } from 'commander';
import type { Config } from '../config/index.ts';
import { withDatabase } from '../cli/context.ts';

/** `thamani broker clients`: devices the running broker reports online (it keeps devices.online). */
export function registerBrokerCommands(program: Command, config: () => Config): void {
  const broker = program.command('broker').description('the MQTT broker');
  broker
    .command('clients')
    .description('list connected devices')
    .option('--json', 'print one JSON object')
    .action((opts: { json?: boolean }) =>
      withDatabase(config(), async (rt) => {
        const { deviceRepo } = await import('../devices/device-repo.ts');
        const rows = await deviceRepo.connected(rt.database.pool);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ connected: rows.length, clients: rows })}\n`);
          return;
        }
        if (rows.length === 0) {
          process.stdout.write('No device is connected.\n');
          return;
        }
        for (const r of rows)
          process.stdout.write(
            `${r.id.padEnd(24)} ${r.kind.padEnd(17)} ${r.site} / ${r.unit}  last seen ${r.last_seen_at?.toISOString() ?? '-'}\n`,
          );
        process.stdout.write(`${rows.length} connected\n`);
      }),
    );
}
