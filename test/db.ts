import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';
import { pino } from 'pino';
import { createDatabase, type Database } from '../db/client.ts';
import { withDatabase } from './global-setup.ts';

export const testLogger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export interface TestDatabase {
  url: string;
  name: string;
  database: Database;
}

/**
 * A fresh database cloned from the migrated template, dropped after the file's tests. Call at
 * module level or in beforeAll.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = inject('adminUrl');
  const name = `thamani_t_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${inject('templateDb')}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminUrl, name);
  const database = createDatabase({ url, poolMax: 5, logger: testLogger });
  afterAll(async () => {
    await database.close();
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await c.end();
  });
  return { url, name, database };
}

/**
 * One connection of a fresh test database, held for the file's tests (a COPY, or a transaction
 * across statements, needs the same connection throughout) and released after them. Call at
 * module or describe level; the returned function gives the connection inside tests.
 */
export function holdTestConnection(): () => pg.PoolClient {
  let client: pg.PoolClient | undefined;
  beforeAll(async () => {
    client = await (await createTestDatabase()).database.pool.connect();
  });
  afterAll(() => client?.release());
  return () => {
    if (!client) throw new Error('holdTestConnection: used before its beforeAll ran');
    return client;
  };
}
