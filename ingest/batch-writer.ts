import type pg from 'pg';
import type { Logger } from 'pino';
import {
  allStored,
  fateCounts,
  refusalOf,
  refusedRecord,
  shareOutcome,
  type QuarantineIn,
  type RowIn,
  type WriteResult,
} from './commit-fns.ts';
import { createCopyEncoder } from './copy-binary.ts';
import { decide, type Decision } from './instant-fns.ts';
import {
  copyWithLatest,
  insertQuarantine,
  isUniqueViolation,
  storedAt,
  transaction,
  withClient,
} from './readings-repo.ts';

export type { QuarantineIn, RowIn, WriteResult } from './commit-fns.ts';

/**
 * Group commit: readings and quarantine records from many devices wait here briefly and are
 * written in one transaction; every waiting publish is released when that transaction commits.
 * A few transactions are in flight at once (their WAL flushes overlap); whatever arrives
 * meanwhile forms the next one, so batches grow by themselves under load and stay small (fast)
 * when the load is light. This file is the queue, the deadlines and the two commit paths; the
 * SQL is in readings-repo.ts, how an outcome is shared out in commit-fns.ts.
 */

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

export function createBatchWriter(o: BatchWriterOptions) {
  let queue: Job[] = [];
  let queuedRows = 0;
  let running = 0;
  const concurrency = o.concurrency ?? 3;
  const encode = createCopyEncoder();
  /**
   * The commits in flight: their jobs (for deadlines) and when each ends (committed, or failed
   * and its jobs queued again): a commit that must look instants up waits for the earlier ones.
   */
  const inFlight = new Map<Job[], Promise<void>>();
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
        settle(
          j,
          new Error(`not committed within the deadline (${Math.round(now - j.deadline)} ms late)`),
        );
      }
    }
    if (expiredQueued) queue = queue.filter((j) => !j.settled);
    for (const jobs of inFlight.keys())
      for (const j of jobs)
        if (j.deadline <= now) settle(j, new Error('not committed within the deadline'));
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

  const connected = <T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> =>
    withClient(o.pool, o.logger, body);

  function stored(rows: readonly RowIn[]): void {
    if (!o.onStored || rows.length === 0) return;
    // Committed whatever a listener does: its failure must not look like a failed write.
    try {
      o.onStored(rows);
    } catch (err) {
      o.logger.error({ err }, 'a listener of stored readings failed');
    }
  }

  async function write(jobs: Job[]): Promise<WriteResult[]> {
    const started = performance.now();
    // The commits that began before this one: a commit that must look instants up waits for them
    // first (below), so it judges only against what is committed. Only earlier ones: no two
    // commits ever wait for each other.
    const earlier = [...inFlight].filter(([k]) => k !== jobs).map(([, ended]) => ended);
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
    const slow = (trustNothing: boolean): Promise<WriteResult[]> =>
      (checks || trustNothing ? Promise.all(earlier) : Promise.resolve()).then(() =>
        connected((client) => inTransaction(client, jobs, rows, started, trustNothing)),
      );
    if (!fast) return slow(false);
    const outcome = await connected(async (client): Promise<WriteResult[] | 'replan'> => {
      // The common case: only readings new by construction. The COPY and the latest-state upsert
      // go as one simple query, which PostgreSQL runs as one implicit transaction: one round
      // trip, committed (and flushed, synchronous_commit) before it answers; on any error
      // nothing of it is stored. Its locks on latest_readings are held for microseconds, not
      // across round trips, so concurrent commits hardly wait for each other.
      try {
        await copyWithLatest(client, encode(rows));
        o.onCommit?.({
          rows: rows.length,
          quarantined: 0,
          duplicates: 0,
          regressions: 0,
          conflicts: 0,
          durationMs: performance.now() - started,
        });
        stored(rows);
        return jobs.map((j) => allStored(j.rows.length));
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        // Another writer took one of these instants (a replay by the owner): nothing of it was
        // stored. Every instant is looked up, once the earlier commits are over; the connection
        // goes back to the pool meanwhile (an earlier commit may be waiting for one).
        return 'replan';
      }
    });
    return outcome === 'replan' ? slow(true) : outcome;
  }

  /** Readings of the job (in order) and what became of each. */
  interface Plan {
    decisions: Decision[];
    toStore: RowIn[];
  }

  /**
   * What the rows meet: the stored readings at the instants that are not new by construction.
   * Only what is committed counts: a reading another commit is still storing may yet not be
   * stored (its COPY can meet a unique violation and its plan change), and a refusal judged
   * against it would tell the device "conflict" about a reading that is then stored.
   */
  async function plan(client: pg.PoolClient, rows: RowIn[], trustNothing: boolean): Promise<Plan> {
    const stored = await storedAt(
      client,
      rows.filter((r) => trustNothing || r.expect !== 'new'),
    );
    const decisions = decide(rows, (k) => stored.get(k), trustNothing);
    const toStore = rows.filter((_, i) => decisions[i]!.fate === 'store');
    return { decisions, toStore };
  }

  /** Everything else: readings to look up, quarantine records, in one transaction. */
  async function inTransaction(
    client: pg.PoolClient,
    jobs: Job[],
    rows: RowIn[],
    started: number,
    trustNothing: boolean,
  ): Promise<WriteResult[]> {
    try {
      await transaction.begin(client);
      const p = await plan(client, rows, trustNothing);
      if (p.toStore.length > 0) {
        // The readings and their latest state in one round trip, as on the common path.
        try {
          await copyWithLatest(client, encode(p.toStore));
        } catch (err) {
          // Someone else stored one of these instants meanwhile (a replay by the owner, a later
          // commit of readings new by construction): it is committed now (a unique violation is
          // raised only then), so looking every instant up again, once, finds it.
          if (!isUniqueViolation(err) || trustNothing) throw err;
          await transaction.rollback(client);
          return inTransaction(client, jobs, rows, started, true);
        }
      }
      // The jobs' own quarantine records, then one per refused row (the order shareOutcome reads).
      const records = jobs.flatMap((j) => j.quarantine);
      for (const [i, r] of rows.entries()) {
        const reason = refusalOf(p.decisions[i]!);
        if (reason) records.push(refusedRecord(r, reason));
      }
      const qIds = await insertQuarantine(client, records);
      await transaction.commit(client);
      o.onCommit?.({
        rows: p.toStore.length,
        quarantined: qIds.length,
        ...fateCounts(p.decisions),
        durationMs: performance.now() - started,
      });
      stored(p.toStore);
      return shareOutcome(jobs, p.decisions, qIds);
    } catch (err) {
      await transaction.rollback(client).catch(() => undefined);
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
    let end = (): void => undefined;
    const ended = new Promise<void>((resolve) => {
      end = () => {
        inFlight.delete(jobs);
        resolve();
      };
    });
    try {
      if (jobs.length > 0) {
        inFlight.set(jobs, ended);
        const results = await write(jobs);
        jobs.forEach((j, i) => settle(j, null, results[i]));
      }
      retryDelay = 50;
    } catch (err) {
      // The database is slow or gone: keep the jobs (their publishes stay unacknowledged) and retry.
      o.logger.warn(
        { err, jobs: jobs.length, retryInMs: retryDelay },
        'ingest commit failed; retrying',
      );
      const again = jobs.filter((j) => !j.settled);
      // Back in arrival order: an original ahead of its re-send.
      queue = [...again, ...queue].sort((a, b) => a.order - b.order);
      queuedRows += again.reduce((n, j) => n + size(j), 0);
      end();
      await new Promise((r) => setTimeout(r, retryDelay));
      retryDelay = Math.min(retryDelay * 2, 2000);
    } finally {
      end();
      running--;
    }
    schedule();
  }

  function submit(
    rows: RowIn[],
    quarantineIn: QuarantineIn[],
    deadline: number,
    done: Job['done'],
  ): void {
    queue.push({
      rows,
      quarantine: quarantineIn,
      deadline,
      done,
      settled: false,
      order: arrivals++,
    });
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
      return new Promise((resolve, reject) =>
        submit(rows, quarantineIn, Date.now() + timeoutMs, (err, result) =>
          err ? reject(err) : resolve(result!),
        ),
      );
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
