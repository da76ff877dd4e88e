import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import type { Logger } from 'pino';
import * as schema from './schema/index.ts';

export type Db = NodePgDatabase<typeof schema>;

export interface Database {
  readonly pool: pg.Pool;
  readonly db: Db;
  close(): Promise<void>;
}

// timestamptz and int8 come back as JS values the app expects; bigint counts stay exact strings
// only where drizzle declares them so.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v;
});

export function createDatabase(opts: {
  url: string;
  poolMax: number;
  logger: Logger;
  applicationName?: string;
}): Database {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolMax,
    application_name: opts.applicationName ?? 'thamani',
    // A connection that cannot be made in 10 s is an outage, not a slow query.
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // A client losing its server (restart, failover, terminated backend) must not crash the
  // process: pg-pool listens for errors on idle clients only, so a client that dies while
  // checked out (between two statements of a transaction) would throw an uncaught 'error'.
  // The query in flight, if any, still fails and its caller handles that.
  pool.on('error', (err) => {
    // pg-pool hangs the whole client on the error: kilobytes of internals per line in the log
    // of an outage. Keep it on the object, out of the log.
    if ('client' in err) Object.defineProperty(err, 'client', { enumerable: false });
    opts.logger.warn({ err }, 'idle database connection failed');
  });
  pool.on('connect', (client) => {
    client.on('error', (err) => opts.logger.warn({ err }, 'database connection failed'));
  });
  const db = drizzle(pool, { schema });
  let closed = false;
  return {
    pool,
    db,
    async close() {
      if (closed) return;
      closed = true;
      // pg-pool's end() resolves once it has told its clients to end, before their sockets are
      // closed: a server stopped right after (a test's or bench's embedded PostgreSQL) would
      // still find them open and their 'terminating connection' errors would be logged. Wait
      // for each client's end ('remove'), a few seconds at most.
      let open = pool.totalCount;
      const ended = new Promise<void>((resolve) => {
        if (open === 0) resolve();
        pool.on('remove', () => {
          if (--open <= 0) resolve();
        });
      });
      await pool.end();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        ended,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 5000).unref();
        }),
      ]);
      clearTimeout(timer);
    },
  };
}
