import type { Command } from 'commander';
import { start } from '../app/start.ts';
import { createLifecycle } from '../app/lifecycle.ts';
import { openDatabase } from '../app/database.ts';
import { createLogger } from '../app/logger.ts';
import type { Config } from '../config/index.ts';

export function registerCoreCommands(program: Command, config: () => Config): void {
  program
    .command('start')
    .description('run the whole system: database (embedded unless DATABASE_URL), migrations, broker, ingest, API, dashboards')
    .action(async () => {
      await start(config());
      // Runs until SIGINT/SIGTERM; the lifecycle exits the process.
      await new Promise(() => undefined);
    });

  program
    .command('migrate')
    .description('apply pending database migrations and exit')
    .action(async () => {
      const cfg = config();
      const logger = createLogger(cfg.log);
      const lifecycle = createLifecycle(logger);
      try {
        const rt = await openDatabase(cfg, logger, lifecycle);
        process.stdout.write(`migrations applied; time-series path: ${rt.timeseries.mode}${rt.timeseries.timescaleVersion ? ` (TimescaleDB ${rt.timeseries.timescaleVersion})` : ''}\n`);
      } finally {
        await lifecycle.stop('migrate done');
      }
    });
}
