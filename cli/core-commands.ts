import { Option, type Command } from 'commander';
import { withDatabase } from './context.ts';
import type { Config } from '../config/index.ts';

export function registerCoreCommands(program: Command, config: () => Config): void {
  program
    .command('start')
    .description(
      'run the whole system: database (embedded unless DATABASE_URL), migrations, broker, ingest, API, dashboards',
    )
    .addOption(
      // The same choices as THAMANI_ROLE (config/config.ts), which this overrides.
      new Option(
        '--role <role>',
        'what this node runs: all (default), gateway (broker, ingest, firmware downloads) or api (HTTPS API, dashboards)',
      ).choices(['all', 'gateway', 'api']),
    )
    .action(async (opts: { role?: Config['role'] }) => {
      const { start } = await import('../app/start.ts');
      const loaded = config();
      await start(opts.role ? { ...loaded, role: opts.role } : loaded);
      // Runs until SIGINT/SIGTERM; the lifecycle exits the process.
      await new Promise(() => undefined);
    });

  program
    .command('migrate')
    .description('apply pending database migrations and exit')
    .action(() =>
      withDatabase(config(), (rt) => {
        process.stdout.write(
          `migrations applied; time-series path: ${rt.timeseries.mode}${rt.timeseries.timescaleVersion ? ` (TimescaleDB ${rt.timeseries.timescaleVersion})` : ''}\n`,
        );
        return Promise.resolve();
      }),
    );
}
