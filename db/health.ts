import type { Queryable } from './timeseries.ts';

/**
 * Readiness probes' SQL: the database answers, and a role holds the privileges its work needs.
 */

/** The database answers a query on this pool. */
export async function databaseAnswers(q: Queryable): Promise<boolean> {
  return (await q.query<{ one: number }>('SELECT 1 AS one')).rows.length === 1;
}

/** The role of this pool may append readings and quarantine records (ingest's grants). */
export async function mayAppendReadings(q: Queryable): Promise<boolean> {
  const r = await q.query<{ ok: boolean }>(
    `SELECT has_table_privilege('readings', 'INSERT') AND has_table_privilege('quarantine', 'INSERT') AS ok`,
  );
  return r.rows[0]?.ok === true;
}
