import type pg from 'pg';
import type { Queryable } from './timeseries.ts';

/**
 * Runs fn in one transaction on a pooled connection: COMMIT when it resolves, ROLLBACK when it
 * throws or when it returns `rollback` (a lost race the caller handles without an error). For
 * services that work on the pool directly (the alert evaluator, the webhook outbox, ingest);
 * request handlers use db/scoped.ts instead, which also carries the caller's scope.
 */
export const rollback: unique symbol = Symbol('rollback');

export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (q: Queryable) => Promise<T | typeof rollback>,
): Promise<T | typeof rollback> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query(result === rollback ? 'ROLLBACK' : 'COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
