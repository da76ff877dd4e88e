import type pg from 'pg';
import type { Logger } from 'pino';
import { metricNames, type MetricName } from '../devices/metrics.ts';
import { createCopyEncoder, type LatestValue } from './copy-binary.ts';
import { copyInOneWrite } from '../db/pg-copy.ts';
import type { Reason } from './ingest-errors.ts';
import { decide, instantKey, type Decision, type Occupant } from './instant-fns.ts';
import type { Expect } from './seq-fns.ts';

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
  /** What its instant should hold (ingest/seq-fns.ts): 'new' goes straight into the COPY. */
  expect: Expect;
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
  /** Rows refused because their seq went backwards for a new instant (SEQ_REGRESSION). */
  regressions: number;
  /** Rows refused because another reading holds their instant (TS_CONFLICT). */
  conflicts: number;
  /** The job's own quarantine records, then one per refused row. */
  quarantineIds: number[];
  /** Why each refused row was refused, with its seq (for the device's errors topic). */
  refused: (Reason & { seq: number })[];
}

export interface CommitStats {
  /** Readings the commit stored: exactly the rows it added to `readings`. */
  rows: number;
  quarantined: number;
  duplicates: number;
  regressions: number;
  conflicts: number;
  durationMs: number;
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
  /** Its outcome once settled (undefined: not yet). */
  outcome?: Error | null;
  /** Jobs whose duplicates are duplicates of this one's readings: told when it settles. */
  followers?: ((err: Error | null) => void)[];
}

export interface BatchWriterOptions {
  pool: pg.Pool;
  logger: Logger;
  maxRows: number;
  maxWaitMs: number;
  /** Transactions in flight at once: commits overlap their WAL flushes (default 3). */
  concurrency?: number;
  onCommit?: (stats: CommitStats) => void;
  /** The rows a commit stored (not duplicates), after COMMIT: live dashboards and alerts. */
  onStored?: (rows: readonly RowIn[]) => void;
}

const INSERT_QUARANTINE = `
  INSERT INTO quarantine (device_id, unit_id, received_at, topic, payload, payload_size, batch_index, seq, reasons)
  SELECT * FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::text[], $5::bytea[], $6::int4[], $7::int4[], $8::int8[], $9::jsonb[])
  RETURNING id`;
/** What is stored at the given instants: enough to tell a re-send (the same reading) from a conflict. */
const OCCUPANTS = `SELECT r.device_id, r.ts, r.seq, ${metricNames.map((m) => `r."${m}"`).join(', ')} FROM unnest($1::text[], $2::timestamptz[]) AS k(device_id, ts) JOIN readings r ON r.device_id = k.device_id AND r.ts = k.ts`;

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

/** Readings a commit in flight is storing: all its jobs' rows, or those it chose (with their job). */
type Claims = 'all' | { row: RowIn; job: Job }[];

/** The outcome of a job whose rows were all stored: shared, frozen, one per row count. */
const allStoredResults: WriteResult[] = [];
function allStored(n: number): WriteResult {
  if (n >= 256) return { stored: n, duplicates: 0, regressions: 0, conflicts: 0, quarantineIds: [], refused: [] };
  return (allStoredResults[n] ??= Object.freeze({ stored: n, duplicates: 0, regressions: 0, conflicts: 0, quarantineIds: Object.freeze([]) as unknown as number[], refused: Object.freeze([]) as unknown as WriteResult['refused'] }));
}

const isUniqueViolation = (err: unknown): boolean => (err as { code?: string }).code === '23505';

export function createBatchWriter(o: BatchWriterOptions) {
  let queue: Job[] = [];
  let queuedRows = 0;
  let running = 0;
  const concurrency = o.concurrency ?? 3;
  const encode = createCopyEncoder();
  /** The commits in flight: their jobs (for deadlines) and the readings they are storing (for the instants of later ones). */
  const inFlight = new Map<Job[], Claims>();
  let timer: NodeJS.Timeout | undefined;
  let retryDelay = 50;
  let arrivals = 0;

  const size = (j: Job): number => j.rows.length + j.quarantine.length;
  /** Jobs committed but waiting for the commit of the readings they repeat (settleAfter). */
  const following = new Set<Job>();
  const settle = (j: Job, err: Error | null, result?: WriteResult): void => {
    if (j.settled) return;
    j.settled = true;
    following.delete(j);
    j.outcome = err;
    j.done(err, result);
    const followers = j.followers;
    j.followers = undefined;
    if (followers) for (const f of followers) f(err);
  };
  /**
   * Settles a job once the jobs whose readings its duplicates repeat are settled: a re-send is
   * acknowledged only when its original is committed; if the original is not (its deadline
   * passed), neither is the re-send, and the device sends it again.
   */
  const settleAfter = (j: Job, result: WriteResult, after: readonly Job[]): void => {
    let waiting = 0;
    const one = (err: Error | null): void => {
      if (err) settle(j, new Error(`the reading it repeats was not committed: ${err.message}`));
      else if (--waiting === 0) settle(j, null, result);
    };
    for (const a of after) {
      if (a.outcome === undefined) {
        waiting++;
        (a.followers ??= []).push(one);
      } else if (a.outcome) return settle(j, new Error(`the reading it repeats was not committed: ${a.outcome.message}`));
    }
    if (waiting === 0) settle(j, null, result);
    else following.add(j);
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
    for (const j of following) if (j.deadline <= now) settle(j, new Error('the reading it repeats was not committed within the deadline'));
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

  /**
   * The readings on their way in the commits in flight (other than `own`), by instant: what a
   * reading that is not new by construction must be judged against besides what is stored. Only
   * built on that rare path; the hot path registers one array per commit and nothing per row.
   */
  function committing(earlier: readonly Job[][], of: ReadonlySet<string>): Map<string, Occupant<Job>> {
    const out = new Map<string, Occupant<Job>>();
    const add = (r: RowIn, owner: Job): void => {
      if (of.has(r.deviceId)) out.set(instantKey(r.deviceId, r.ts), { seq: r.seq, values: r.values, owner });
    };
    for (const jobs of earlier) {
      const claims = inFlight.get(jobs);
      if (!claims) continue; // finished meanwhile: its readings are stored (or it failed)
      if (claims === 'all') for (const j of jobs) for (const r of j.rows) add(r, j);
      else for (const c of claims) add(c.row, c.job);
    }
    return out;
  }

  /** Each job's outcome and, for some, the jobs whose commits it must wait for (settleAfter). */
  type Outcomes = { results: WriteResult[]; after?: Job[][] };

  async function write(jobs: Job[]): Promise<Outcomes> {
    const started = performance.now();
    // Only commits that began before this one are judged against (and waited for): one that
    // began later judges against this one instead, so no two commits ever wait for each other.
    const earlier = [...inFlight.keys()].filter((k) => k !== jobs);
    const rows: RowIn[] = [];
    let checks = false;
    let quarantined = 0;
    for (const j of jobs) {
      for (const r of j.rows) {
        rows.push(r);
        if (r.expect !== 'new') checks = true;
      }
      quarantined += j.quarantine.length;
    }
    const fast = !checks && quarantined === 0 && rows.length > 0;
    // Visible to later commits from now on: their readings at these instants are judged against these.
    if (fast) inFlight.set(jobs, 'all');
    return withClient(async (client) => {
      // The common case: only readings new by construction. The COPY and the latest-state upsert
      // go as one simple query, which PostgreSQL runs as one implicit transaction: one round
      // trip, committed (and flushed, synchronous_commit) before it answers; on any error
      // nothing of it is stored. Its locks on latest_readings are held for microseconds, not
      // across round trips, so concurrent commits hardly wait for each other.
      if (fast) {
        try {
          const encoded = encode(rows);
          await copyInto(client, encoded, latestStatement(client, encoded.latest));
          o.onCommit?.({ rows: rows.length, quarantined: 0, duplicates: 0, regressions: 0, conflicts: 0, durationMs: performance.now() - started });
          stored(rows);
          return { results: jobs.map((j) => allStored(j.rows.length)) };
        } catch (err) {
          if (!isUniqueViolation(err)) throw err;
          // Another writer took one of these instants (a replay by the owner): nothing of it was
          // stored; the transaction below looks every instant up.
          inFlight.set(jobs, []);
          return inTransaction(client, jobs, rows, started, true, earlier);
        }
      }
      return inTransaction(client, jobs, rows, started, false, earlier);
    });
  }

  /** Readings of the job (in order) and what became of each. */
  interface Plan {
    decisions: Decision<Job>[];
    toStore: RowIn[];
  }

  /** What the rows meet: the readings of the `earlier` commits still in flight, and the stored ones. */
  async function plan(client: pg.PoolClient, rows: RowIn[], trustNothing: boolean, earlier: readonly Job[][]): Promise<Plan> {
    const pending = committing(earlier, new Set(rows.filter((r) => trustNothing || r.expect !== 'new').map((r) => r.deviceId)));
    // What is stored at the instants that are not new by construction and not on their way.
    const ask = rows.filter((r) => (trustNothing || r.expect !== 'new') && !pending.has(instantKey(r.deviceId, r.ts)));
    const stored = new Map<string, Occupant<Job>>();
    if (ask.length > 0) {
      const found = await client.query<Record<string, unknown> & { device_id: string; ts: Date; seq: string }>(OCCUPANTS, [ask.map((r) => r.deviceId), ask.map((r) => r.ts)]);
      for (const f of found.rows) {
        const values: Partial<Record<MetricName, number>> = {};
        for (const m of metricNames) if (f[m] !== null && f[m] !== undefined) values[m] = Number(f[m]);
        stored.set(instantKey(f.device_id, f.ts), { seq: Number(f.seq), values });
      }
    }
    const decisions = decide<Job>(rows, (k) => stored.get(k) ?? pending.get(k), trustNothing);
    const toStore = rows.filter((_, i) => decisions[i]!.fate === 'store');
    return { decisions, toStore };
  }

  /** Everything else: readings to look up, quarantine records, in one transaction. */
  async function inTransaction(client: pg.PoolClient, jobs: Job[], rows: RowIn[], started: number, trustNothing: boolean, earlier: readonly Job[][]): Promise<Outcomes> {
    const claims: { row: RowIn; job: Job }[] = [];
    inFlight.set(jobs, claims);
    try {
      await client.query('BEGIN');
      const p = await plan(client, rows, trustNothing, earlier);
      let at = 0;
      for (const j of jobs) for (const r of j.rows) if (p.decisions[at++]!.fate === 'store') claims.push({ row: r, job: j });
      inFlight.set(jobs, claims);
      if (p.toStore.length > 0) {
        // The readings and their latest state in one round trip, as on the common path.
        const encoded = encode(p.toStore);
        try {
          await copyInto(client, encoded, latestStatement(client, encoded.latest));
        } catch (err) {
          // Someone else stored one of these instants meanwhile (a replay by the owner, a commit
          // that planned at the same time as this one): look every instant up again, once.
          if (!isUniqueViolation(err) || trustNothing) throw err;
          await client.query('ROLLBACK');
          return inTransaction(client, jobs, rows, started, true, earlier);
        }
      }
      const quarantineIn = jobs.flatMap((j) => j.quarantine);
      const refused: { row: RowIn; reason: Reason }[] = [];
      for (const [i, r] of rows.entries()) {
        const d = p.decisions[i]!;
        if (d.fate === 'regression') refused.push({ row: r, reason: { field: 'seq', code: 'SEQ_REGRESSION', message: d.occupant ? `seq did not increase for a newer ts, and seq ${d.occupant.seq} is stored at this ts` : 'seq did not increase for a newer ts' } });
        else if (d.fate === 'conflict') refused.push({ row: r, reason: { field: 'ts', code: 'TS_CONFLICT', message: `another reading (seq ${d.occupant!.seq}) is already stored at this ts` } });
      }
      for (const { row: r, reason } of refused) {
        quarantineIn.push({ deviceId: r.deviceId, unitId: r.unitId, receivedAt: new Date(), topic: `devices/${r.deviceId}/telemetry`, payload: Buffer.from(JSON.stringify({ seq: r.seq, ts: r.ts.toISOString(), readings: r.values })), payloadSize: 0, batchIndex: undefined, seq: r.seq, reasons: [reason] });
      }
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
      const fates = { duplicates: 0, regressions: 0, conflicts: 0 };
      for (const d of p.decisions) if (d.fate === 'duplicate') fates.duplicates++; else if (d.fate === 'regression') fates.regressions++; else if (d.fate === 'conflict') fates.conflicts++;
      o.onCommit?.({ rows: p.toStore.length, quarantined: qIds.length, ...fates, durationMs: performance.now() - started });
      stored(p.toStore);
      // Hand each job its own share of the outcome: its own quarantine ids come back first, in
      // insertion order, then those of the refused rows.
      let qi = 0;
      const results = jobs.map((j) => {
        const ids = qIds.slice(qi, qi + j.quarantine.length);
        qi += j.quarantine.length;
        return { stored: 0, duplicates: 0, regressions: 0, conflicts: 0, quarantineIds: ids, refused: [] as WriteResult['refused'] };
      });
      const after = jobs.map((): Job[] => []);
      let i = 0;
      let ri = 0;
      const ownQuarantine = qi;
      for (const [ji, j] of jobs.entries()) {
        const res = results[ji]!;
        for (const r of j.rows) {
          const d = p.decisions[i++]!;
          if (d.fate === 'store') res.stored++;
          else if (d.fate === 'duplicate') {
            res.duplicates++;
            // A duplicate of a reading another commit is still storing is safe only once it is.
            if (d.occupant?.owner && d.occupant.owner !== j) after[ji]!.push(d.occupant.owner);
          } else {
            if (d.fate === 'regression') res.regressions++;
            else res.conflicts++;
            res.refused.push({ ...refused[ri]!.reason, seq: r.seq });
            res.quarantineIds.push(qIds[ownQuarantine + ri]!);
            ri++;
          }
        }
      }
      return { results, after };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
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
        inFlight.set(jobs, []);
        const { results, after } = await write(jobs);
        jobs.forEach((j, i) => {
          const waitFor = after?.[i];
          if (waitFor && waitFor.length > 0) settleAfter(j, results[i]!, waitFor);
          else settle(j, null, results[i]);
        });
      }
      retryDelay = 50;
    } catch (err) {
      // The database is slow or gone: keep the jobs (their publishes stay unacknowledged) and retry.
      o.logger.warn({ err, jobs: jobs.length, retryInMs: retryDelay }, 'ingest commit failed; retrying');
      const again = jobs.filter((j) => !j.settled);
      // Back in arrival order: an original ahead of its re-send.
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
