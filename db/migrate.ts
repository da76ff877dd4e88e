import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import type { Logger } from 'pino';
import { timeseriesInfo, type TimeseriesInfo } from './timeseries.ts';

export const migrationsFolder = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  'migrations',
);

/**
 * Applies pending migrations (drizzle-kit's journal in db/migrations) in one transaction, under
 * an advisory lock so that two processes starting at once do not race.
 */
export async function runMigrations(url: string, logger: Logger): Promise<TimeseriesInfo> {
  const client = new pg.Client({ connectionString: url, application_name: 'thamani-migrate' });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock(7243001)');
    const started = performance.now();
    await migrate(drizzle(client), { migrationsFolder });
    const info = await timeseriesInfo(client);
    logger.info(
      {
        durationMs: Math.round(performance.now() - started),
        timeseries: info.mode,
        timescaledb: info.timescaleVersion,
      },
      'database migrated',
    );
    return info;
  } finally {
    await client.query('SELECT pg_advisory_unlock(7243001)').catch(() => undefined);
    await client.end();
  }
}
