import type pg from 'pg';
import type { Logger } from '../app/logger.ts';
import type { DeviceSession, DownstreamPublisher, UpstreamHandler } from '../broker/types.ts';
import { createBatchWriter, type BatchWriterOptions, type QuarantineIn, type RowIn, type WriteResult } from './batch-writer.ts';
import type { Reason } from './ingest-errors.ts';
import { parsePayload, type ValidationLimits } from './payload-fns.ts';

export interface IngestConfig extends ValidationLimits {
  maxPayloadBytes: number;
  quarantinePayloadBytes: number;
  batchMaxRows: number;
  batchMaxWaitMs: number;
  /** Readings waiting for a commit beyond which the broker stops reading device sockets. */
  maxPending: number;
  /** A publish not committed within this is refused (no PUBACK; the device re-sends it). */
  commitTimeoutMs: number;
}

export interface IngestCounters {
  accepted: number;
  duplicates: number;
  rejected: Record<string, number>;
  commits: number;
  committedRows: number;
  commitMsTotal: number;
}

/**
 * Telemetry in: validate, then hand to the batch writer, and resolve only when the readings and
 * quarantine records are committed (the broker sends the PUBACK after that, ADR 0003). The
 * device is told why anything was quarantined on devices/{id}/errors.
 */
export function createIngest(deps: { pool: pg.Pool; logger: Logger; config: IngestConfig; publisher: DownstreamPublisher; backpressure?: { hold(): void; release(): void }; onStored?: BatchWriterOptions['onStored'] }) {
  const { config, logger } = deps;
  const counters: IngestCounters = { accepted: 0, duplicates: 0, rejected: {}, commits: 0, committedRows: 0, commitMsTotal: 0 };
  const writer = createBatchWriter({
    pool: deps.pool,
    logger,
    maxRows: config.batchMaxRows,
    maxWaitMs: config.batchMaxWaitMs,
    onStored: deps.onStored,
    onCommit: (s) => {
      counters.commits++;
      counters.committedRows += s.rows;
      counters.commitMsTotal += s.durationMs;
    },
  });
  /** Highest seq seen per device (loaded from its newest stored reading on first contact). */
  const lastSeq = new Map<string, number>();
  /** One load per device: messages that wait on it resume in arrival order, so seq checks stay ordered. */
  const loading = new Map<string, Promise<void>>();
  let holding = false;

  async function ensureSeqLoaded(deviceId: string): Promise<void> {
    if (lastSeq.has(deviceId)) return;
    let load = loading.get(deviceId);
    if (!load) {
      load = deps.pool
        .query<{ seq: number }>(`SELECT seq FROM readings WHERE device_id = $1 ORDER BY ts DESC LIMIT 1`, [deviceId])
        .then((r) => void lastSeq.set(deviceId, Number(r.rows[0]?.seq ?? -1)))
        .finally(() => loading.delete(deviceId));
      loading.set(deviceId, load);
    }
    await load;
  }

  function pressure(): void {
    const pending = writer.pending();
    if (!holding && pending > config.maxPending) {
      holding = true;
      logger.warn({ pending }, 'ingest saturated: pausing device sockets');
      deps.backpressure?.hold();
    } else if (holding && pending < config.maxPending / 2) {
      holding = false;
      logger.info({ pending }, 'ingest caught up: resuming device sockets');
      deps.backpressure?.release();
    }
  }

  // One sweeper for all deadlines instead of a timer per publish (a timer each costs more than
  // the rest of the hot path).
  const deadlines = new Set<{ at: number; reject(err: Error): void }>();
  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const d of deadlines) if (d.at <= now) d.reject(new Error(`not committed within ${config.commitTimeoutMs} ms`));
  }, Math.min(250, config.commitTimeoutMs));
  sweeper.unref();
  function withDeadline<T>(promise: Promise<T>, at: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry = { at, reject: (err: Error) => { deadlines.delete(entry); reject(err); } };
      deadlines.add(entry);
      promise.then(
        (v) => {
          deadlines.delete(entry);
          resolve(v);
        },
        (err: unknown) => {
          deadlines.delete(entry);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  function count(reasons: Reason[]): void {
    for (const r of reasons) counters.rejected[r.code] = (counters.rejected[r.code] ?? 0) + 1;
  }

  async function ingest(session: DeviceSession, topic: string, payload: Buffer, receivedAt: Date, opts: { replay?: boolean } = {}): Promise<WriteResult & { reasons: { index: number | undefined; seq: number | undefined; reasons: Reason[] }[] }> {
    const quarantineIn: QuarantineIn[] = [];
    const rows: RowIn[] = [];
    const capped = payload.subarray(0, config.quarantinePayloadBytes);
    const q = (batchIndex: number | undefined, seq: number | undefined, reasons: Reason[]): void => {
      quarantineIn.push({ deviceId: session.deviceId, unitId: session.unitId, receivedAt, topic, payload: capped, payloadSize: payload.length, batchIndex, seq, reasons });
      count(reasons);
    };
    let bad: { index: number | undefined; seq: number | undefined; reasons: Reason[] }[];
    if (payload.length > config.maxPayloadBytes) {
      bad = [{ index: undefined, seq: undefined, reasons: [{ field: '', code: 'PAYLOAD_TOO_LARGE', message: `${payload.length} bytes; at most ${config.maxPayloadBytes}` }] }];
    } else {
      // Wait (if at all) before parsing, so that everything after it runs without yielding:
      // publishes of one device are then checked in the order they arrived.
      await ensureSeqLoaded(session.deviceId);
      const parsed = parsePayload(payload, session.kind, config);
      bad = parsed.bad;
      let last = lastSeq.get(session.deviceId) ?? -1;
      for (const g of parsed.good) {
        // A replay was in order when it first arrived; (device, ts) still keeps it from being stored twice.
        rows.push({ deviceId: session.deviceId, unitId: session.unitId, seq: g.seq, ts: g.ts, values: g.values, suspectSeq: !opts.replay && g.seq <= last });
        if (g.seq > last && !opts.replay) last = g.seq;
      }
      lastSeq.set(session.deviceId, last);
    }
    for (const b of bad) q(b.index, b.seq, b.reasons);
    const job = writer.write(rows, quarantineIn);
    pressure();
    try {
      const result = await withDeadline(job.promise, Date.now() + config.commitTimeoutMs);
      counters.accepted += result.stored;
      counters.duplicates += result.duplicates;
      if (result.regressions) counters.rejected.SEQ_REGRESSION = (counters.rejected.SEQ_REGRESSION ?? 0) + result.regressions;
      return { ...result, reasons: bad };
    } catch (err) {
      job.abandon();
      lastSeq.delete(session.deviceId); // re-read: what we assumed may not be stored
      throw err;
    } finally {
      pressure();
    }
  }

  const handleTelemetry: UpstreamHandler = async (session, message) => {
    const result = await ingest(session, message.topic, message.payload, message.receivedAt);
    if (result.quarantineIds.length > 0) {
      const reasons = result.reasons.flatMap((b) => b.reasons.map((r) => ({ ...r, ...(b.seq !== undefined ? { seq: b.seq } : {}) })));
      if (result.regressions > 0) reasons.push({ field: 'seq', code: 'SEQ_REGRESSION', message: 'seq did not increase for a new reading' });
      // After the commit and before the PUBACK; a lost error message is not a lost reading.
      deps.publisher.publish(session.deviceId, 'errors', JSON.stringify({ topic: message.topic, quarantineIds: result.quarantineIds, reasons })).catch((err: unknown) => logger.warn({ err }, 'could not tell the device why'));
    }
  };

  return {
    handleTelemetry,
    ingest,
    counters,
    pending: () => writer.pending(),
    /** Flush what is queued (shutdown). */
    async stop(): Promise<void> {
      await writer.drain();
      clearInterval(sweeper);
    },
  };
}

export type Ingest = ReturnType<typeof createIngest>;
