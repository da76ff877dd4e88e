import type pg from 'pg';
import type { Logger } from 'pino';
import type {
  DeviceSession,
  DownstreamPublisher,
  UpstreamCallbackHandler,
} from '../broker/types.ts';
import { NotAcknowledged, type InternalRejectRecorder } from '../broker/input-guard.ts';
import { ingestRepo } from './ingest-repo.ts';
import {
  createBatchWriter,
  type BatchWriterOptions,
  type QuarantineIn,
  type RowIn,
  type WriteResult,
} from './batch-writer.ts';
import type { Reason } from './ingest-errors.ts';
import { parsePayload, type BadReading, type ValidationLimits } from './payload-fns.ts';
import { judge, noHistory, type SeqState } from './seq-fns.ts';

export interface IngestConfig extends ValidationLimits {
  maxPayloadBytes: number;
  quarantinePayloadBytes: number;
  batchMaxRows: number;
  batchMaxWaitMs: number;
  /** Readings waiting for a commit beyond which the broker stops reading device sockets. */
  maxPending: number;
  /** A publish not committed within this is refused (no PUBACK; the device re-sends it). */
  commitTimeoutMs: number;
  /** How far a reading's seq may jump past the device's highest one; beyond is SEQ_JUMP. */
  maxSeqJump: number;
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
export function createIngest(deps: {
  pool: pg.Pool;
  logger: Logger;
  config: IngestConfig;
  publisher: DownstreamPublisher;
  backpressure?: { hold(): void; release(): void };
  onStored?: BatchWriterOptions['onStored'];
}) {
  const { config, logger } = deps;
  const counters: IngestCounters = {
    accepted: 0,
    duplicates: 0,
    rejected: {},
    commits: 0,
    committedRows: 0,
    commitMsTotal: 0,
  };
  const writer = createBatchWriter({
    pool: deps.pool,
    logger,
    maxRows: config.batchMaxRows,
    maxWaitMs: config.batchMaxWaitMs,
    onStored: deps.onStored,
    // Counted from what each commit did, not from what each publish was told: a publish whose
    // deadline passed while its commit went on is stored all the same, and is counted.
    onCommit: (s) => {
      counters.commits++;
      counters.committedRows += s.rows;
      counters.commitMsTotal += s.durationMs;
      counters.accepted += s.rows;
      counters.duplicates += s.duplicates;
      if (s.regressions)
        counters.rejected.SEQ_REGRESSION = (counters.rejected.SEQ_REGRESSION ?? 0) + s.regressions;
      if (s.conflicts)
        counters.rejected.TS_CONFLICT = (counters.rejected.TS_CONFLICT ?? 0) + s.conflicts;
    },
  });
  /** Each device's sequence (ingest/seq-fns.ts), loaded from its stored readings on first contact. */
  const seqs = new Map<string, SeqState>();
  const asLive = { replay: false, maxJump: config.maxSeqJump };
  const asReplay = { replay: true, maxJump: config.maxSeqJump };
  /** One load per device: messages that wait on it resume in arrival order, so seq checks stay ordered. */
  const loading = new Map<string, Promise<void>>();
  let holding = false;

  function loadSeq(deviceId: string): Promise<void> {
    let load = loading.get(deviceId);
    if (!load) {
      load = ingestRepo
        .seqHistory(deps.pool, deviceId)
        .then((row) => {
          const s = noHistory();
          if (row?.max_ts) s.maxTs = row.max_ts.getTime();
          if (row?.seq != null && row.ts) {
            s.seq = Number(row.seq);
            s.seqTs = row.ts.getTime();
          }
          seqs.set(deviceId, s);
        })
        .finally(() => loading.delete(deviceId));
      loading.set(deviceId, load);
    }
    return load;
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

  function count(reasons: Reason[]): void {
    for (const r of reasons) counters.rejected[r.code] = (counters.rejected[r.code] ?? 0) + 1;
  }

  type Outcome = WriteResult & { reasons: BadReading[] };
  /** `result` and `bad` (what was quarantined, and why) once committed; `err` if not. */
  type Done = (err: Error | null, result?: WriteResult, bad?: BadReading[]) => void;
  const NOTHING_QUARANTINED: QuarantineIn[] = [];

  /**
   * The hot path, in callbacks (no promise per message): validate, queue for the group commit,
   * call `done` once committed. Everything between the seq check and the queueing runs without
   * yielding, so a device's publishes are checked in the order they arrived.
   */
  function submit(
    session: DeviceSession,
    topic: string,
    payload: Buffer,
    receivedAt: Date,
    replay: boolean,
    done: Done,
  ): void {
    if (payload.length <= config.maxPayloadBytes && !seqs.has(session.deviceId)) {
      // Once per device. A throw of the resumed submit must reach `done` (the broker's guard makes
      // it an INTERNAL_REJECT): escaping this promise, it would be an unhandled rejection.
      loadSeq(session.deviceId).then(
        () => {
          try {
            submit(session, topic, payload, receivedAt, replay, done);
          } catch (err) {
            done(err instanceof Error ? err : new Error(String(err)));
          }
        },
        (err: unknown) =>
          done(new NotAcknowledged("could not read the device's last seq", { cause: err })),
      );
      return;
    }
    const rows: RowIn[] = [];
    let bad: BadReading[];
    if (payload.length > config.maxPayloadBytes) {
      bad = [
        {
          index: undefined,
          seq: undefined,
          reasons: [
            {
              field: '',
              code: 'PAYLOAD_TOO_LARGE',
              message: `${payload.length} bytes; at most ${config.maxPayloadBytes}`,
            },
          ],
        },
      ];
    } else {
      const parsed = parsePayload(payload, session.kind, config);
      bad = parsed.bad;
      const state = seqs.get(session.deviceId)!;
      // A replay was judged when it first arrived; SenML has no seq: only their instants count.
      const o = replay ? asReplay : asLive;
      for (const g of parsed.good) {
        const expect = judge(
          state,
          { seq: g.seq, ts: g.ts.getTime(), sequenced: parsed.senml !== true },
          o,
        );
        if (expect === 'jump') {
          bad.push({
            index: undefined,
            seq: g.seq,
            reasons: [
              {
                field: 'seq',
                code: 'SEQ_JUMP',
                message: `jumps more than ${config.maxSeqJump} past the device's highest seq (${state.seq})`,
              },
            ],
          });
        } else
          rows.push({
            deviceId: session.deviceId,
            unitId: session.unitId,
            seq: g.seq,
            ts: g.ts,
            values: g.values,
            expect,
          });
      }
    }
    let quarantineIn = NOTHING_QUARANTINED; // shared: the writer only reads it
    if (bad.length > 0) {
      const capped = payload.subarray(0, config.quarantinePayloadBytes);
      quarantineIn = bad.map((b) => {
        count(b.reasons);
        return {
          deviceId: session.deviceId,
          unitId: session.unitId,
          receivedAt,
          topic,
          payload: capped,
          payloadSize: payload.length,
          batchIndex: b.index,
          seq: b.seq,
          reasons: b.reasons,
        };
      });
    }
    writer.submit(rows, quarantineIn, Date.now() + config.commitTimeoutMs, (err, result) => {
      pressure();
      // A failed publish keeps the sequence as it is: its re-send is the newest reading again or
      // a late one, which the rule accepts (ingest/seq-fns.ts).
      if (err) return done(new NotAcknowledged('not committed', { cause: err })); // the device sends it again
      done(null, result, bad);
    });
    pressure();
  }

  /**
   * The device's seq counter restarted (a technician says so): forget its seq, keep its instants.
   * A reading already judged keeps its verdict; the next one sets the baseline.
   */
  function resetSequence(deviceId: string): void {
    const s = seqs.get(deviceId);
    if (s) {
      s.seq = -1;
      s.seqTs = -Infinity;
    } else {
      // Not loaded yet: load it (the old baseline), then forget the seq; readings that arrive
      // meanwhile wait on the same load and see the reset.
      void loadSeq(deviceId).then(
        () => resetSequence(deviceId),
        (err: unknown) => logger.warn({ err, deviceId }, 'could not reset the sequence'),
      );
    }
    logger.info({ deviceId }, 'sequence reset: the next reading sets the baseline');
  }

  /** Validates and stores one publish; resolves once committed (replays, tools, tests). */
  function ingest(
    session: DeviceSession,
    topic: string,
    payload: Buffer,
    receivedAt: Date,
    opts: { replay?: boolean } = {},
  ): Promise<Outcome> {
    return new Promise((resolve, reject) =>
      submit(session, topic, payload, receivedAt, opts.replay ?? false, (err, result, bad) =>
        err ? reject(err) : resolve({ ...result!, reasons: bad! }),
      ),
    );
  }

  /**
   * The broker's guard (broker/input-guard.ts): a message the gateway failed on, on any topic, is
   * kept whole as INTERNAL_REJECT for a technician (replayable once the bug is fixed), and the
   * device is told; `done` once committed, like any quarantine record.
   */
  const rejectInternal: InternalRejectRecorder = (session, message, errorClass, done) => {
    const reasons: Reason[] = [
      {
        field: '',
        code: 'INTERNAL_REJECT',
        message: `the gateway failed on this message (${errorClass}); it is kept for a technician, do not send it again`,
      },
    ];
    count(reasons);
    const { payload } = message;
    const record: QuarantineIn = {
      deviceId: session.deviceId,
      unitId: session.unitId,
      receivedAt: message.receivedAt,
      topic: message.topic,
      payload: payload.subarray(0, config.quarantinePayloadBytes),
      payloadSize: payload.length,
      batchIndex: undefined,
      seq: undefined,
      reasons,
    };
    writer.submit([], [record], Date.now() + config.commitTimeoutMs, (err, result) => {
      pressure();
      if (err) return done(err);
      deps.publisher
        .publish(
          session.deviceId,
          'errors',
          JSON.stringify({ topic: message.topic, quarantineIds: result!.quarantineIds, reasons }),
        )
        .catch((e: unknown) => logger.warn({ err: e }, 'could not tell the device why'));
      done(null);
    });
  };

  const handleTelemetry: UpstreamCallbackHandler = {
    callback(session, message, done) {
      submit(
        session,
        message.topic,
        message.payload,
        message.receivedAt,
        false,
        (err, result, bad) => {
          if (err) return done(err);
          if (result!.quarantineIds.length > 0) {
            const reasons = bad!.flatMap((b) =>
              b.reasons.map((r) => ({ ...r, ...(b.seq !== undefined ? { seq: b.seq } : {}) })),
            );
            reasons.push(...result!.refused);
            // After the commit and before the PUBACK; a lost error message is not a lost reading.
            deps.publisher
              .publish(
                session.deviceId,
                'errors',
                JSON.stringify({
                  topic: message.topic,
                  quarantineIds: result!.quarantineIds,
                  reasons,
                }),
              )
              .catch((e: unknown) => logger.warn({ err: e }, 'could not tell the device why'));
          }
          done(null);
        },
      );
    },
  };

  return {
    handleTelemetry,
    rejectInternal,
    ingest,
    resetSequence,
    counters,
    pending: () => writer.pending(),
    /** Flush what is queued (shutdown). */
    async stop(): Promise<void> {
      await writer.drain();
      writer.stop();
    },
  };
}

export type Ingest = ReturnType<typeof createIngest>;
