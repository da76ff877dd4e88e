import type pg from 'pg';
import type { Logger } from '../app/logger.ts';
import { metricNames, type MetricName } from '../devices/metrics.ts';
import { createCopyEncoder, type LatestValue } from './copy-binary.ts';
import { copyInOneWrite } from './pg-copy.ts';
import type { Reason } from './ingest-errors.ts';

/**
 * Group commit: readings and quarantine records from many devices wait here briefly and are
 * written in one transaction; every waiting publish is released when that transaction commits.
 * A few transactions are in flight at once (their WAL flushes overlap); whatever arrives
 * meanwhile forms the next one, so batches grow by themselves under load and stay small (fast)
 * when the load is light.
 */

export interface RowIn {
  deviceId: string;
  unitId: string;
  seq: number;
  ts: Date;
  values: Partial<Record<MetricName, number>>;
  /** seq not above the device's last one: stored only if (device, ts) is new, else a duplicate. */
  suspectSeq: boolean;
}

export interface QuarantineIn {
  deviceId: string;
  unitId: string;
  receivedAt: Date;
  topic: string;
  payload: Buffer;
  payloadSize: number;
  batchIndex: number | undefined;
  seq: number | undefined;
  reasons: Reason[];
}

export interface WriteResult {
  stored: number;
  duplicates: number;
  /** Rows refused because their seq went backwards for a new instant: quarantine ids. */
  regressions: number;
  quarantineIds: number[];
}

interface Job {
  rows: RowIn[];
  quarantine: QuarantineIn[];
  /** ms since epoch after which the caller stops waiting (its publish goes unacknowledged). */
  deadline: number;
  done: (err: Error | null, result?: WriteResult) => void;
  settled: boolean;
  /** Arrival number: a failed commit's jobs go back into the queue in the order they came. */
  order: number;
}

export interface BatchWriterOptions {
  pool: pg.Pool;
  logger: Logger;
  maxRows: number;
  maxWaitMs: number;
  /** Transactions in flight at once: commits overlap their WAL flushes (default 3). */
  concurrency?: number;
  onCommit?: (stats: { rows: number; quarantined: number; durationMs: number }) => void;
  /** The rows a commit stored (not duplicates), after COMMIT: live dashboards and alerts. */
  onStored?: (rows: readonly RowIn[]) => void;
}

const metricCols = metricNames.map((m) => `"${m}"`).join(', ');
const INSERT_READINGS = `
  INSERT INTO readings (ts, device_id, unit_id, seq, ${metricCols})
  SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::uuid[], $4::int8[], ${metricNames.map((_, i) => `$${i + 5}::float8[]`).join(', ')})
  ON CONFLICT DO NOTHING
  RETURNING device_id, ts`;
const INSERT_QUARANTINE = `
  INSERT INTO quarantine (device_id, unit_id, received_at, topic, payload, payload_size, batch_index, seq, reasons)
  SELECT * FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::text[], $5::bytea[], $6::int4[], $7::int4[], $8::int8[], $9::jsonb[])
  RETURNING id`;
const UPSERT_LATEST = `
  INSERT INTO latest_readings (device_id, metric, unit_id, ts, value)
  SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::timestamptz[], $5::float8[])
  ON CONFLICT (device_id, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value, unit_id = excluded.unit_id
  WHERE latest_readings.ts < excluded.ts`;
const EXISTING = `SELECT device_id, ts FROM unnest($1::text[], $2::timestamptz[]) AS k(device_id, ts) WHERE EXISTS (SELECT 1 FROM readings r WHERE r.device_id = k.device_id AND r.ts = k.ts)`;

const key = (deviceId: string, ts: Date | string): string => `${deviceId}|${(ts instanceof Date ? ts : new Date(ts)).getTime()}`;

/** COPY for the encoder's columns (ingest/copy-binary.ts); metric names come from the catalogue. */
const copyReadings = (columns: readonly MetricName[]): string => `COPY readings (ts, device_id, unit_id, seq${columns.map((c) => `, "${c}"`).join('')}) FROM STDIN (FORMAT binary)`;

/**
 * The latest-state upsert as one statement with literal values, to follow a COPY in the same
 * simple query (the extended protocol's parameters cannot share a round trip with COPY). Ids are
 * escaped although validated; metric names come from the catalogue; values are finite numbers.
 */
function latestStatement(client: pg.PoolClient, latest: readonly LatestValue[]): string {
  if (latest.length === 0) return '';
  const values = latest.map((x) => `(${client.escapeLiteral(x.deviceId)}, '${x.metric}', ${client.escapeLiteral(x.unitId)}, '${x.ts.toISOString()}', ${x.value})`).join(', ');
  return `INSERT INTO latest_readings (device_id, metric, unit_id, ts, value) VALUES ${values}
  ON CONFLICT (device_id, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value, unit_id = excluded.unit_id
  WHERE latest_readings.ts < excluded.ts`;
}

function copyInto(client: pg.PoolClient, encoded: { columns: readonly MetricName[]; data: Buffer }, then = ''): Promise<void> {
  const copy = copyReadings(encoded.columns);
  return copyInOneWrite(client, then ? `${copy}; ${then}` : copy, encoded.data);
}

/** The outcome of a job whose rows were all stored: shared, frozen, one per row count. */
const allStoredResults: WriteResult[] = [];
function allStored(n: number): WriteResult {
  if (n >= 256) return { stored: n, duplicates: 0, regressions: 0, quarantineIds: [] };
  return (allStoredResults[n] ??= Object.freeze({ stored: n, duplicates: 0, regressions: 0, quarantineIds: Object.freeze([]) as unknown as number[] }));
}

const isUniqueViolation = (err: unknown): boolean => (err as { code?: string }).code === '23505';

/**
 * Inside a transaction, COPY readings whose seq advanced (new by construction) straight into
 * `readings`, several times cheaper per row than INSERT … SELECT. Inside a savepoint: on a unique
 * violation it rolls back to it and answers false.
 */
async function copyFresh(client: pg.PoolClient, encoded: { columns: readonly MetricName[]; data: Buffer }): Promise<boolean> {
  await client.query('SAVEPOINT fast_copy');
  try {
    await copyInto(client, encoded);
    await client.query('RELEASE SAVEPOINT fast_copy');
    return true;
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    await client.query('ROLLBACK TO SAVEPOINT fast_copy');
    return false;
  }
}

export function createBatchWriter(o: BatchWriterOptions) {
  let queue: Job[] = [];
  let queuedRows = 0;
  let running = 0;
  const concurrency = o.concurrency ?? 3;
  const encode = createCopyEncoder();
  /** The commits in flight: their jobs (for deadlines) and their outcome (for a commit that must wait for those before it). */
  const inFlight = new Map<Job[], Promise<unknown>>();
  let timer: NodeJS.Timeout | undefined;
  let retryDelay = 50;
  let arrivals = 0;

  const size = (j: Job): number => j.rows.length + j.quarantine.length;
  const settle = (j: Job, err: Error | null, result?: WriteResult): void => {
    if (j.settled) return;
    j.settled = true;
    j.done(err, result);
  };

  // One sweeper for every deadline instead of a timer per publish (a timer each costs more than
  // the rest of the hot path). A job past its deadline is dropped if still queued; if its commit
  // is under way, that commit may still store it: the device's re-send is then a duplicate.
  const sweeper = setInterval(() => {
    const now = Date.now();
    let expiredQueued = false;
    for (const j of queue) {
      if (!j.settled && j.deadline <= now) {
        queuedRows -= size(j);
        expiredQueued = true;
        settle(j, new Error(`not committed within the deadline (${Math.round(now - j.deadline)} ms late)`));
      }
    }
    if (expiredQueued) queue = queue.filter((j) => !j.settled);
    for (const jobs of inFlight.keys()) for (const j of jobs) if (j.deadline <= now) settle(j, new Error('not committed within the deadline'));
  }, 250);
  sweeper.unref();

  function schedule(): void {
    if (running >= concurrency || timer || queue.length === 0) return;
    if (queuedRows >= o.maxRows) {
      void flush();
      return;
    }
    timer = setTimeout(() => {
      timer = undefined;
      void flush();
    }, o.maxWaitMs);
  }

  async function withClient<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await o.pool.connect();
    // A connection that dies between two statements emits 'error' on the checked-out client,
    // which nothing else listens to while it is ours: without this the process would crash.
    let broken: Error | undefined;
    const onError = (err: Error): void => {
      broken = err;
      o.logger.warn({ err }, 'ingest connection failed');
    };
    client.on('error', onError);
    try {
      return await body(client);
    } catch (err) {
      broken ??= err instanceof Error ? err : new Error(String(err));
      throw err;
    } finally {
      client.off('error', onError);
      // A failed connection is destroyed, not returned to the pool; one that only saw a unique
      // violation (handled below) never gets here with an error.
      client.release(broken);
    }
  }

  function stored(rows: readonly RowIn[]): void {
    if (!o.onStored || rows.length === 0) return;
    // Committed whatever a listener does: its failure must not look like a failed write.
    try {
      o.onStored(rows);
    } catch (err) {
      o.logger.error({ err }, 'a listener of stored readings failed');
    }
  }

  async function write(jobs: Job[], earlier: readonly Promise<unknown>[]): Promise<WriteResult[]> {
    const started = performance.now();
    const rows: RowIn[] = [];
    let suspects = false;
    let quarantined = 0;
    for (const j of jobs) {
      for (const r of j.rows) {
        rows.push(r);
        if (r.suspectSeq) suspects = true;
      }
      quarantined += j.quarantine.length;
    }
    // A reading whose seq did not advance is a duplicate only if its instant is stored, and its
    // original may still be committing (a re-send after a lost PUBACK): let the commits that
    // started before this one finish, so that the check below sees them. The rare path only.
    if (suspects && earlier.length > 0) {
      const outcomes = await Promise.allSettled(earlier);
      // One of them failed: its jobs are back in the queue, ahead of these, and only its retry
      // tells whether these are duplicates. Retry these after it (the same backoff).
      if (outcomes.some((x) => x.status === 'rejected')) throw new Error('an earlier commit failed: readings whose seq did not advance wait for its retry');
    }
    return withClient(async (client) => {
      // The common case: only readings whose seq advanced. The COPY and the latest-state upsert
      // go as one simple query, which PostgreSQL runs as one implicit transaction: one round
      // trip, committed (and flushed, synchronous_commit) before it answers; on any error
      // nothing of it is stored. Its locks on latest_readings are held for microseconds, not
      // across round trips, so concurrent commits hardly wait for each other.
      if (!suspects && quarantined === 0 && rows.length > 0) {
        try {
          const encoded = encode(rows);
          await copyInto(client, encoded, latestStatement(client, encoded.latest));
          o.onCommit?.({ rows: rows.length, quarantined: 0, durationMs: performance.now() - started });
          stored(rows);
          return jobs.map((j) => allStored(j.rows.length));
        } catch (err) {
          if (!isUniqueViolation(err)) throw err;
          // Nothing of it was stored: the transaction below sorts stored from duplicate.
        }
      }
      return inTransaction(client, jobs, rows, started);
    });
  }

  /** Everything else: duplicates, seq regressions, quarantine records, in one transaction. */
  async function inTransaction(client: pg.PoolClient, jobs: Job[], rows: RowIn[], started: number): Promise<WriteResult[]> {
    try {
      await client.query('BEGIN');
      const quarantineIn = jobs.flatMap((j) => j.quarantine);
      // Readings whose seq did not advance are only duplicates if the instant is already stored.
      const suspects = rows.filter((r) => r.suspectSeq);
      const existing = new Set<string>();
      if (suspects.length > 0) {
        const found = await client.query<{ device_id: string; ts: Date }>(EXISTING, [suspects.map((r) => r.deviceId), suspects.map((r) => r.ts)]);
        for (const f of found.rows) existing.add(key(f.device_id, f.ts));
      }
      // …or if its original is in this very batch.
      for (const r of rows) if (!r.suspectSeq) existing.add(key(r.deviceId, r.ts));
      const regression = (r: RowIn): boolean => r.suspectSeq && !existing.has(key(r.deviceId, r.ts));
      const toInsert = rows.filter((r) => !regression(r));
      const regressed = rows.filter(regression);
      for (const r of regressed) {
        quarantineIn.push({ deviceId: r.deviceId, unitId: r.unitId, receivedAt: new Date(), topic: `devices/${r.deviceId}/telemetry`, payload: Buffer.from(JSON.stringify({ seq: r.seq, ts: r.ts.toISOString(), readings: r.values })), payloadSize: 0, batchIndex: undefined, seq: r.seq, reasons: [{ field: 'seq', code: 'SEQ_REGRESSION', message: 'seq did not increase for a new reading' }] });
      }
      const inserted = new Set<string>();
      if (toInsert.length > 0) {
        // A suspect row that passed is already stored (a duplicate): nothing to write for it.
        const fresh = toInsert.filter((r) => !r.suspectSeq);
        if (fresh.length > 0 && !(await copyFresh(client, encode(fresh)))) {
          // A conflict inside the COPY (a device reusing an instant under a new seq, a race with a
          // concurrent commit): the row-by-row path sorts stored from duplicate.
          const params: unknown[] = [fresh.map((r) => r.ts), fresh.map((r) => r.deviceId), fresh.map((r) => r.unitId), fresh.map((r) => r.seq)];
          for (const m of metricNames) params.push(fresh.map((r) => r.values[m] ?? null));
          const res = await client.query<{ device_id: string; ts: Date }>(INSERT_READINGS, params);
          for (const r of res.rows) inserted.add(key(r.device_id, r.ts));
        } else {
          for (const r of fresh) inserted.add(key(r.deviceId, r.ts));
        }
      }
      // Stored now: the fresh rows the insert kept (a suspect that passed is a duplicate).
      const storedRows = toInsert.filter((r) => !r.suspectSeq && inserted.has(key(r.deviceId, r.ts)));
      await upsertLatest(client, storedRows);
      let qIds: number[] = [];
      if (quarantineIn.length > 0) {
        const q = quarantineIn;
        const res = await client.query<{ id: number }>(INSERT_QUARANTINE, [
          q.map((x) => x.deviceId), q.map((x) => x.unitId), q.map((x) => x.receivedAt), q.map((x) => x.topic), q.map((x) => x.payload),
          q.map((x) => x.payloadSize || x.payload.length), q.map((x) => x.batchIndex ?? null), q.map((x) => x.seq ?? null), q.map((x) => JSON.stringify(x.reasons)),
        ]);
        qIds = res.rows.map((r) => Number(r.id));
      }
      await client.query('COMMIT');
      o.onCommit?.({ rows: inserted.size, quarantined: qIds.length, durationMs: performance.now() - started });
      stored(storedRows);
      // Hand each job its own share of the outcome (quarantine ids come back in insertion order).
      let qi = 0;
      const results = jobs.map((j) => {
        const own = j.quarantine.length;
        const ids = qIds.slice(qi, qi + own);
        qi += own;
        let storedN = 0, duplicates = 0, regressions = 0;
        for (const r of j.rows) {
          if (regression(r)) regressions++;
          else if (!r.suspectSeq && inserted.has(key(r.deviceId, r.ts))) storedN++;
          else duplicates++;
        }
        return { stored: storedN, duplicates, regressions, quarantineIds: ids };
      });
      // Regression quarantine ids are the tail: give them to their jobs.
      for (const [ji, j] of jobs.entries()) {
        const n = j.rows.filter(regression).length;
        if (n > 0) {
          results[ji]!.quarantineIds.push(...qIds.slice(qi, qi + n));
          qi += n;
        }
      }
      return results;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  async function upsertLatest(client: pg.PoolClient, rows: readonly RowIn[]): Promise<void> {
    const l = encode(rows).latest; // (the COPY data it also makes is not needed here: a rare path)
    if (l.length === 0) return;
    await client.query(UPSERT_LATEST, [l.map((x) => x.deviceId), l.map((x) => x.metric), l.map((x) => x.unitId), l.map((x) => x.ts), l.map((x) => x.value)]);
  }

  async function flush(): Promise<void> {
    if (running >= concurrency) return;
    running++;
    let jobs: Job[] = [];
    let rows = 0;
    if (queuedRows <= o.maxRows) {
      // All of it fits (the usual case): take the queue whole rather than shift it job by job.
      jobs = queue.filter((j) => !j.settled);
      queue = [];
      rows = queuedRows;
    } else {
      let taken = 0;
      while (taken < queue.length && (rows < o.maxRows || jobs.length === 0)) {
        const j = queue[taken++]!;
        if (j.settled) continue;
        jobs.push(j);
        rows += size(j);
      }
      queue = queue.slice(taken);
    }
    queuedRows -= rows;
    try {
      if (jobs.length > 0) {
        const commit = write(jobs, [...inFlight.values()]);
        inFlight.set(jobs, commit);
        const results = await commit;
        jobs.forEach((j, i) => settle(j, null, results[i]));
      }
      retryDelay = 50;
    } catch (err) {
      // The database is slow or gone: keep the jobs (their publishes stay unacknowledged) and retry.
      o.logger.warn({ err, jobs: jobs.length, retryInMs: retryDelay }, 'ingest commit failed; retrying');
      const again = jobs.filter((j) => !j.settled);
      // Back in arrival order: an original ahead of its re-send (which waits for it, see write()).
      queue = [...again, ...queue].sort((a, b) => a.order - b.order);
      queuedRows += again.reduce((n, j) => n + size(j), 0);
      inFlight.delete(jobs);
      await new Promise((r) => setTimeout(r, retryDelay));
      retryDelay = Math.min(retryDelay * 2, 2000);
    } finally {
      inFlight.delete(jobs);
      running--;
    }
    schedule();
  }

  function submit(rows: RowIn[], quarantineIn: QuarantineIn[], deadline: number, done: Job['done']): void {
    queue.push({ rows, quarantine: quarantineIn, deadline, done, settled: false, order: arrivals++ });
    queuedRows += rows.length + quarantineIn.length;
    schedule();
  }

  return {
    /**
     * Queues rows and quarantine records; `done` is called once they are committed (or with an
     * error once `deadline`, ms since epoch, has passed without a commit).
     */
    submit,
    /** The same as a promise (tests, tools). */
    write(rows: RowIn[], quarantineIn: QuarantineIn[], timeoutMs = 60_000): Promise<WriteResult> {
      return new Promise((resolve, reject) => submit(rows, quarantineIn, Date.now() + timeoutMs, (err, result) => (err ? reject(err) : resolve(result!))));
    },
    pending: (): number => queuedRows,
    async drain(): Promise<void> {
      while (queue.length > 0 || running > 0) {
        if (running === 0) await flush();
        else await new Promise((r) => setTimeout(r, 5));
      }
    },
    stop(): void {
      clearInterval(sweeper);
    },
  };
}

export type BatchWriter = ReturnType<typeof createBatchWriter>;
