import type { Config } from '../config/index.ts';
import {
  createDatabase,
  runMigrations,
  startEmbeddedPostgres,
  timeseries,
  type Database,
  type TimeseriesInfo,
} from '../db/index.ts';
import { mayAppendReadings } from '../db/health.ts';
import { openAsLoginRole } from './db-roles.ts';
import { devSecret } from './dev-secrets.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { Logger } from 'pino';

export interface DatabaseRuntime {
  database: Database;
  url: string;
  embedded: boolean;
  timeseries: TimeseriesInfo;
}

/**
 * DATABASE_URL if set; else the embedded PostgreSQL under <dataDir>/pg. Migrations run every
 * time (they are idempotent and take an advisory lock).
 */
export async function openDatabase(
  config: Config,
  logger: Logger,
  lifecycle: Lifecycle,
): Promise<DatabaseRuntime> {
  let url = config.db.url;
  const embedded = url === undefined;
  if (url === undefined) {
    // Supervised: if the server dies it is restarted on the same port and data directory
    // (db/pg-supervisor.ts); meanwhile the gateway keeps running, not ready, and every component
    // retries (docs/operations.md, "When the database goes away"). Stopped last, never restarted then.
    const server = await startEmbeddedPostgres({
      dataDir: config.dataDir,
      port: config.db.embeddedPort,
      logger: logger.child({ component: 'embedded-pg' }),
    });
    lifecycle.onStop('embedded-postgres', () => server.stop());
    url = server.url;
  }
  const info = await runMigrations(url, logger.child({ component: 'migrate' }));
  const database = createDatabase({ url, poolMax: config.db.poolMax, logger });
  lifecycle.onStop('database-pool', () => database.close());
  return { database, url, embedded, timeseries: info };
}

export const INGEST_LOGIN_ROLE = 'thamani_ingest_writer';

/**
 * Ingest's own connections: the LOGIN role `thamani_ingest_writer` (group `thamani_ingest`),
 * which may append readings and quarantine records and keep the latest state, and nothing else:
 * not the owner, so it can neither update nor delete readings nor disable the triggers that
 * refuse it (docs/security-model.md, "Database roles"). Its pool closes after ingest's last flush
 * (register this before ingest).
 */
export async function openIngestDatabase(
  config: Config,
  rt: DatabaseRuntime,
  logger: Logger,
  lifecycle: Lifecycle,
): Promise<Database> {
  const password =
    config.db.ingestPassword ?? (await devSecret(config.dataDir, 'ingest-db-password'));
  const database = await openAsLoginRole(
    { client: rt.database.pool, url: rt.url },
    {
      kind: 'ingest',
      loginRole: INGEST_LOGIN_ROLE,
      password,
      poolMax: config.db.poolMax,
      logger,
      applicationName: 'thamani-ingest',
    },
  );
  lifecycle.onStop('ingest-database-pool', () => database.close());
  return database;
}

/**
 * Security events' own connections (two: the writer uses one at a time), as the owner like the
 * rest of the audit writers. Apart so that a flood of refusals, or a write stuck behind the audit
 * chain's lock, cannot take a connection that a CONNECT, ingest or the API needs. Closes after
 * the security events' last flush (register this before them).
 */
export function openSecurityEventsDatabase(
  rt: DatabaseRuntime,
  logger: Logger,
  lifecycle: Lifecycle,
): Database {
  const database = createDatabase({
    url: rt.url,
    poolMax: 2,
    logger,
    applicationName: 'thamani-security-events',
  });
  lifecycle.onStop('security-events-pool', () => database.close());
  return database;
}

/**
 * Readiness of ingest's connections: they log in and may append readings and quarantine records
 * (a wrong INGEST_DB_PASSWORD or a missing grant would otherwise only show as PUBACKs that never
 * come). For /readyz.
 */
export function ingestCanWrite(pool: Pick<Database['pool'], 'query'>): Promise<boolean> {
  return mayAppendReadings(pool);
}

/**
 * Hourly upkeep of the time-series store: partitions ahead, raw retention. A pass that fails (the
 * database is down) is tried again after `retryMs`, doubling up to the interval.
 */
export function startTimeseriesMaintenance(
  rt: DatabaseRuntime,
  opts: {
    rawRetentionDays: number;
    logger: Logger;
    lifecycle: Lifecycle;
    intervalMs?: number;
    retryMs?: number;
  },
): void {
  const intervalMs = opts.intervalMs ?? 3_600_000;
  const retryMs = opts.retryMs ?? 60_000;
  let failures = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const run = async (): Promise<void> => {
    try {
      const made = await timeseries.ensurePartitions(rt.database.pool, rt.timeseries.mode, {
        aheadDays: 28,
        behindDays: 35,
      });
      if (made > 0) opts.logger.info({ made }, 'created readings partitions');
      const cutoff = new Date(Date.now() - opts.rawRetentionDays * 86_400_000);
      const expired = await timeseries.expireRawReadings(
        rt.database.pool,
        rt.timeseries.mode,
        cutoff,
      );
      if (expired.length > 0)
        opts.logger.info({ expired, cutoff }, 'raw readings past retention expired');
      if (failures > 0)
        opts.logger.info({ failures }, 'time-series maintenance done after failures');
      failures = 0;
    } catch (err) {
      failures++;
      opts.logger.error({ err, failures }, 'time-series maintenance failed; will retry');
    }
    if (stopped) return;
    timer = setTimeout(
      () => void run(),
      failures === 0 ? intervalMs : Math.min(retryMs * 2 ** (failures - 1), intervalMs),
    );
    timer.unref();
  };
  void run();
  opts.lifecycle.onStop('timeseries-maintenance', () => {
    stopped = true;
    clearTimeout(timer);
  });
}
