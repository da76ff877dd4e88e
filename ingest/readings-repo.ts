import type pg from 'pg';
import type { Logger } from 'pino';
import { metricNames, type MetricName } from '../devices/metrics.ts';
import type { LatestValue } from './copy-binary.ts';
import { instantKey, type Occupant } from './instant-fns.ts';
import { copyInOneWrite } from '../db/pg-copy.ts';
import type { QuarantineIn, RowIn } from './commit-fns.ts';

/**
 * The batch writer's SQL: the binary COPY of readings with their latest state, the lookup of
 * what is stored at given instants, and the quarantine insert. Raw SQL on a checked-out client
 * because COPY and the one-round-trip commit are out of drizzle's reach (ADR 0003).
 */

const INSERT_QUARANTINE = `
  INSERT INTO quarantine (device_id, unit_id, received_at, topic, payload, payload_size, batch_index, seq, reasons)
  SELECT * FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::text[], $5::bytea[], $6::int4[], $7::int4[], $8::int8[], $9::jsonb[])
  RETURNING id`;
/** What is stored at the given instants: enough to tell a re-send (the same reading) from a conflict. */
const OCCUPANTS = `SELECT r.device_id, r.ts, r.seq, ${metricNames.map((m) => `r."${m}"`).join(', ')} FROM unnest($1::text[], $2::timestamptz[]) AS k(device_id, ts) JOIN readings r ON r.device_id = k.device_id AND r.ts = k.ts`;

/** COPY for the encoder's columns (ingest/copy-binary.ts); metric names come from the catalogue. */
const copyReadings = (columns: readonly MetricName[]): string =>
  `COPY readings (ts, device_id, unit_id, seq${columns.map((c) => `, "${c}"`).join('')}) FROM STDIN (FORMAT binary)`;

/**
 * The latest-state upsert as one statement with literal values, to follow a COPY in the same
 * simple query (the extended protocol's parameters cannot share a round trip with COPY). Ids are
 * escaped although validated; metric names come from the catalogue; values are finite numbers.
 */
function latestStatement(client: pg.PoolClient, latest: readonly LatestValue[]): string {
  if (latest.length === 0) return '';
  const values = latest
    .map(
      (x) =>
        `(${client.escapeLiteral(x.deviceId)}, '${x.metric}', ${client.escapeLiteral(x.unitId)}, '${x.ts.toISOString()}', ${x.value})`,
    )
    .join(', ');
  return `INSERT INTO latest_readings (device_id, metric, unit_id, ts, value) VALUES ${values}
  ON CONFLICT (device_id, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value, unit_id = excluded.unit_id
  WHERE latest_readings.ts < excluded.ts`;
}

/**
 * The encoded readings and their latest state in one round trip: the COPY and the upsert as one
 * simple query. Outside a transaction PostgreSQL runs it as one implicit transaction, committed
 * (and flushed) before it answers; on any error nothing of it is stored.
 */
export function copyWithLatest(
  client: pg.PoolClient,
  encoded: { columns: readonly MetricName[]; data: Buffer; latest: readonly LatestValue[] },
): Promise<void> {
  const copy = copyReadings(encoded.columns);
  const then = latestStatement(client, encoded.latest);
  return copyInOneWrite(client, then ? `${copy}; ${then}` : copy, encoded.data);
}

/** What is stored at the rows' instants, by instantKey. */
export async function storedAt(
  client: pg.PoolClient,
  rows: readonly RowIn[],
): Promise<Map<string, Occupant>> {
  const out = new Map<string, Occupant>();
  if (rows.length === 0) return out;
  const found = await client.query<
    Record<string, unknown> & { device_id: string; ts: Date; seq: string }
  >(OCCUPANTS, [rows.map((r) => r.deviceId), rows.map((r) => r.ts)]);
  for (const f of found.rows) {
    const values: Partial<Record<MetricName, number>> = {};
    for (const m of metricNames) if (f[m] !== null && f[m] !== undefined) values[m] = Number(f[m]);
    out.set(instantKey(f.device_id, f.ts), { seq: Number(f.seq), values });
  }
  return out;
}

/** Inserts quarantine records; their ids in the same order. */
export async function insertQuarantine(
  client: pg.PoolClient,
  q: readonly QuarantineIn[],
): Promise<number[]> {
  if (q.length === 0) return [];
  const res = await client.query<{ id: number }>(INSERT_QUARANTINE, [
    q.map((x) => x.deviceId),
    q.map((x) => x.unitId),
    q.map((x) => x.receivedAt),
    q.map((x) => x.topic),
    q.map((x) => x.payload),
    q.map((x) => x.payloadSize || x.payload.length),
    q.map((x) => x.batchIndex ?? null),
    q.map((x) => x.seq ?? null),
    q.map((x) => JSON.stringify(x.reasons)),
  ]);
  return res.rows.map((r) => Number(r.id));
}

/** Transaction control on the writer's own connection (its commits span several statements). */
export const transaction = {
  begin: (client: pg.PoolClient): Promise<unknown> => client.query('BEGIN'),
  commit: (client: pg.PoolClient): Promise<unknown> => client.query('COMMIT'),
  rollback: (client: pg.PoolClient): Promise<unknown> => client.query('ROLLBACK'),
};

export const isUniqueViolation = (err: unknown): boolean =>
  (err as { code?: string }).code === '23505';

/**
 * Runs `body` on a pooled connection. A connection that dies between two statements emits
 * 'error' on the checked-out client, which nothing else listens to while it is ours: without a
 * listener the process would crash. A failed connection is destroyed, not returned to the pool.
 */
export async function withClient<T>(
  pool: pg.Pool,
  logger: Logger,
  body: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error): void => {
    broken = err;
    logger.warn({ err }, 'ingest connection failed');
  };
  client.on('error', onError);
  try {
    return await body(client);
  } catch (err) {
    broken ??= err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}
