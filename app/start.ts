import type { Config } from '../config/index.ts';
import { startOperatorApi } from './api-runtime.ts';
import { openDatabase, startTimeseriesMaintenance } from './database.ts';
import { createLifecycle, stopOnSignals, type Lifecycle } from './lifecycle.ts';
import { createLogger, type Logger } from './logger.ts';

/**
 * The composition root: builds every component from the config, in dependency order, and
 * registers each one's stop with the lifecycle so that shutdown runs in the reverse order.
 */
export interface Running {
  logger: Logger;
  lifecycle: Lifecycle;
}

export async function start(config: Config): Promise<Running> {
  const logger = createLogger(config.log);
  const lifecycle = createLifecycle(logger);
  stopOnSignals(lifecycle, logger);
  try {
    const db = await openDatabase(config, logger, lifecycle);
    startTimeseriesMaintenance(db, { rawRetentionDays: config.db.rawRetentionDays, logger: logger.child({ component: 'timeseries' }), lifecycle });
    await startOperatorApi(config, db, { logger, lifecycle });
    logger.info(
      {
        database: db.embedded ? `embedded PostgreSQL on 127.0.0.1:${config.db.embeddedPort} (data in ${config.dataDir}/pg)` : 'DATABASE_URL',
        timeseries: db.timeseries.mode,
      },
      'Thamani IoT is up. Press Ctrl-C to stop.',
    );
    return { logger, lifecycle };
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    await lifecycle.stop('start-up failed');
    throw err;
  }
}
