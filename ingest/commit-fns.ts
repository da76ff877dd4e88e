import type { MetricName } from '../devices/metrics.ts';
import type { Reason } from './ingest-errors.ts';
import type { Decision } from './instant-fns.ts';
import type { Expect } from './seq-fns.ts';

/**
 * What a commit of the batch writer takes in and gives back, and how its outcome is shared out
 * among the publishes (jobs) it carried: pure functions, no I/O.
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

/** A publish's share of a commit: its readings and its own quarantine records. */
export interface JobIn {
  rows: readonly RowIn[];
  quarantine: readonly QuarantineIn[];
}

/** The outcome of a job whose rows were all stored: shared, frozen, one per row count. */
const allStoredResults: WriteResult[] = [];
export function allStored(n: number): WriteResult {
  if (n >= 256)
    return {
      stored: n,
      duplicates: 0,
      regressions: 0,
      conflicts: 0,
      quarantineIds: [],
      refused: [],
    };
  return (allStoredResults[n] ??= Object.freeze({
    stored: n,
    duplicates: 0,
    regressions: 0,
    conflicts: 0,
    quarantineIds: Object.freeze([]) as unknown as number[],
    refused: Object.freeze([]) as unknown as WriteResult['refused'],
  }));
}

/** Why a row was refused, or undefined if it was stored or is a duplicate. */
export function refusalOf(d: Decision): Reason | undefined {
  if (d.fate === 'regression')
    return {
      field: 'seq',
      code: 'SEQ_REGRESSION',
      message: d.occupant
        ? `seq did not increase for a newer ts, and seq ${d.occupant.seq} is stored at this ts`
        : 'seq did not increase for a newer ts',
    };
  if (d.fate === 'conflict')
    return {
      field: 'ts',
      code: 'TS_CONFLICT',
      message: `another reading (seq ${d.occupant!.seq}) is already stored at this ts`,
    };
  return undefined;
}

/** The quarantine record of a refused row: the reading as the device meant it, and why. */
export const refusedRecord = (r: RowIn, reason: Reason): QuarantineIn => ({
  deviceId: r.deviceId,
  unitId: r.unitId,
  receivedAt: new Date(),
  topic: `devices/${r.deviceId}/telemetry`,
  payload: Buffer.from(JSON.stringify({ seq: r.seq, ts: r.ts.toISOString(), readings: r.values })),
  payloadSize: 0,
  batchIndex: undefined,
  seq: r.seq,
  reasons: [reason],
});

export function fateCounts(decisions: readonly Decision[]): {
  duplicates: number;
  regressions: number;
  conflicts: number;
} {
  const fates = { duplicates: 0, regressions: 0, conflicts: 0 };
  for (const d of decisions) {
    if (d.fate === 'duplicate') fates.duplicates++;
    else if (d.fate === 'regression') fates.regressions++;
    else if (d.fate === 'conflict') fates.conflicts++;
  }
  return fates;
}

/**
 * Each job's share of a commit. `decisions` are those of every job's rows in order; `qIds` the
 * ids of the quarantine records inserted: every job's own records in order, then one per refused
 * row in row order. A job gets its own ids first, then those of its refused rows. A duplicate
 * repeats a committed reading or one of the same commit, so it is acknowledged with the rest.
 */
export function shareOutcome(
  jobs: readonly JobIn[],
  decisions: readonly Decision[],
  qIds: readonly number[],
): WriteResult[] {
  let qi = 0;
  const results = jobs.map((j): WriteResult => {
    const ids = qIds.slice(qi, qi + j.quarantine.length);
    qi += j.quarantine.length;
    return {
      stored: 0,
      duplicates: 0,
      regressions: 0,
      conflicts: 0,
      quarantineIds: ids,
      refused: [],
    };
  });
  let i = 0;
  for (const [ji, j] of jobs.entries()) {
    const res = results[ji]!;
    for (const r of j.rows) {
      const d = decisions[i++]!;
      const reason = refusalOf(d);
      if (d.fate === 'store') res.stored++;
      else if (d.fate === 'duplicate') res.duplicates++;
      else if (reason) {
        if (d.fate === 'regression') res.regressions++;
        else res.conflicts++;
        res.refused.push({ ...reason, seq: r.seq });
        res.quarantineIds.push(qIds[qi++]!);
      }
    }
  }
  return results;
}
