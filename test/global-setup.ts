import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import type { TestProject } from 'vitest/node';
import { freshBuild } from '../bin/fresh-build.js';
import { startEmbeddedPostgres } from '../db/embedded-postgres.ts';
import { runMigrations } from '../db/migrate.ts';
import { detectTimescale } from '../db/timeseries.ts';

/**
 * One PostgreSQL server for the whole run, found in this order:
 *   1. TEST_DATABASE_URL (e.g. a TimescaleDB you run yourself);
 *   2. testcontainers with timescale/timescaledb, when a Docker engine answers;
 *   3. the embedded PostgreSQL from npm, in a temporary directory.
 * A template database is migrated once; each test file clones its own database from it.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    templateDb: string;
    timescaleExpected: boolean;
    dbSource: string;
  }
}

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'warn' });

async function dockerAnswers(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await Promise.race([
      getContainerRuntimeClient(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 5000)),
    ]);
    return true;
  } catch {
    return false;
  }
}

async function startServer(): Promise<{ url: string; source: string; stop: () => Promise<void> }> {
  const given = process.env.TEST_DATABASE_URL;
  if (given) return { url: given, source: 'TEST_DATABASE_URL', stop: () => Promise.resolve() };
  if (await dockerAnswers()) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('timescale/timescaledb:latest-pg17').start();
    return {
      url: container.getConnectionUri(),
      source: 'testcontainers timescale/timescaledb',
      stop: async () => void (await container.stop()),
    };
  }
  // /tmp is reachable by the unprivileged user PostgreSQL runs as when tests run as root.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'thamani-test-pg-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const server = await startEmbeddedPostgres({
    dataDir: dir,
    port,
    logger,
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
  });
  return {
    url: server.url,
    source: 'embedded-postgres',
    stop: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The compiled copy `bin/thamani.js` runs, made once here rather than by every gateway and
  // CLI process the test files start at the same time.
  freshBuild(path.resolve(import.meta.dirname, '..'), 'cli/main.ts');
  const server = await startServer();
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  const templateDb = `thamani_tpl_${randomBytes(4).toString('hex')}`;
  try {
    const offer = await detectTimescale(admin);
    await admin.query(`CREATE DATABASE ${templateDb}`);
    const templateUrl = withDatabase(server.url, templateDb);
    const info = await runMigrations(templateUrl, logger);
    // No one may stay connected to a template (TimescaleDB's scheduler would), or cloning fails.
    await admin.query(`ALTER DATABASE ${templateDb} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true`);
    await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
      [templateDb],
    );
    process.stdout.write(
      `[test db] ${server.source}; time-series path ${info.mode}${info.timescaleVersion ? ` (TimescaleDB ${info.timescaleVersion})` : ''}\n`,
    );
    project.provide('adminUrl', server.url);
    project.provide('templateDb', templateDb);
    project.provide('timescaleExpected', offer.available && offer.preloaded);
    project.provide('dbSource', server.source);
  } finally {
    await admin.end();
  }
  return async () => {
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    const { rows } = await c.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE 'thamani_t%'`,
    );
    for (const { datname } of rows) {
      if (datname.startsWith('thamani_tpl_') && datname !== templateDb) continue;
      await c.query(`ALTER DATABASE ${datname} IS_TEMPLATE false`).catch(() => undefined);
      await c.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`).catch(() => undefined);
    }
    await c.end();
    await server.stop();
  };
}
