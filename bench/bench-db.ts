import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { startEmbeddedPostgres } from '../db/embedded-postgres.ts';

/**
 * The database a benchmark runs on, the same way for every suite: a database named `name` on
 * the server of BENCH_DATABASE_URL (e.g. a TimescaleDB server you run), else an embedded
 * PostgreSQL under data/<name> (or, `temporary`, in a directory of its own under the system's
 * temporary directory, removed at stop). `fresh` drops what an earlier run left.
 */
export async function openBenchDatabase(o: {
  name: string;
  fresh: boolean;
  temporary?: boolean;
  logger: Logger;
}): Promise<{ url: string; source: string; stop(): Promise<void> }> {
  if (!/^[a-z_][a-z0-9_]*$/.test(o.name))
    throw new Error(`--database must be a plain lower-case identifier (got ${o.name})`);
  const given = process.env.BENCH_DATABASE_URL;
  if (given) {
    const admin = new pg.Client({ connectionString: given });
    await admin.connect();
    try {
      if (o.fresh) await admin.query(`DROP DATABASE IF EXISTS ${o.name} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${o.name}`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // exists: reused
      });
    } finally {
      await admin.end();
    }
    const u = new URL(given);
    u.pathname = `/${o.name}`;
    return {
      url: u.toString(),
      source: `BENCH_DATABASE_URL (database ${o.name})`,
      stop: () => Promise.resolve(),
    };
  }
  // A temporary directory is reachable by the `postgres` user the server runs as under root.
  const dir = o.temporary
    ? await mkdtemp(path.join(os.tmpdir(), `${o.name.replace(/_/g, '-')}-`))
    : path.resolve('data', o.name.replace(/_/g, '-'));
  if (o.fresh && !o.temporary) await rm(dir, { recursive: true, force: true });
  const server = await startEmbeddedPostgres({
    dataDir: dir,
    port: 20000 + Math.floor(Math.random() * 20000),
    logger: o.logger,
  });
  return {
    url: server.url,
    source: `embedded PostgreSQL in ${dir}`,
    async stop() {
      await server.stop();
      if (o.temporary) await rm(dir, { recursive: true, force: true });
    },
  };
}
