/**
 * The sequence rule, as pure functions: how a reading's `seq` and `ts` are judged against what
 * the device sent before. Whatever is decided here is decided at submit time, in the order the
 * publishes reached ingest, without I/O; the batch writer then settles the instant itself
 * (stored, duplicate or conflict) against the readings already stored or committing.
 *
 * The rule is `seq` and `ts` increase together. Not "seq above the highest seen": a device that
 * re-sends an unacknowledged message after later ones were committed (a commit that missed its
 * deadline, a cut connection, a gateway restart between two commits in flight, handlers run out
 * of order) sends a lower seq for an *earlier* instant, which is a late reading, not a
 * regression. A regression is a lower (or equal) seq for a *newer* instant: a counter that
 * restarted.
 */

/** What the batch writer must find at the reading's instant (device, ts). */
export type Expect =
  /** Newer than every instant of the device stored or on its way: new by construction (COPY as is). */
  | 'new'
  /** Stored if the instant is free; a duplicate if the same reading is there; a conflict if another is. */
  | 'any'
  /** Only a duplicate of what is stored there is acceptable; a free instant means the seq went back (SEQ_REGRESSION). */
  | 'stored';

export type Judgement = Expect | 'jump';

export interface SeqState {
  /** Highest seq accepted from the device's sequenced (JSON) readings; -1: none known. */
  seq: number;
  /** The instant (ms) of the reading that carried `seq`. */
  seqTs: number;
  /** Newest instant (ms) of any reading of the device stored or on its way (SenML and replays too). */
  maxTs: number;
}

export const noHistory = (): SeqState => ({ seq: -1, seqTs: -Infinity, maxTs: -Infinity });

export interface SeqReading {
  seq: number;
  /** ms since epoch */
  ts: number;
  /** false for SenML, which has no sequence number (its seq is derived from its time). */
  sequenced: boolean;
}

/**
 * Judges one reading and moves the state past it. `replay` (a technician re-submitting a
 * quarantined item) and unsequenced (SenML) readings take no part in seq ordering: only their
 * instant counts. A sequenced reading whose seq jumps more than `maxJump` past the highest one is
 * refused (`jump`) and leaves the state alone, so one absurd seq cannot block the device; the
 * first sequenced reading of a device without history sets the baseline, whatever it is.
 */
export function judge(
  s: SeqState,
  r: SeqReading,
  o: { replay: boolean; maxJump: number },
): Judgement {
  if (o.replay || !r.sequenced) return advanceTs(s, r.ts);
  if (s.seq >= 0 && r.seq - s.seq > o.maxJump) return 'jump';
  if (r.seq > s.seq) {
    s.seq = r.seq;
    s.seqTs = r.ts;
    return advanceTs(s, r.ts);
  }
  // seq did not advance: a newer instant means the counter went back; otherwise it is the newest
  // reading again, or an earlier one arriving late.
  return r.ts > s.seqTs ? 'stored' : 'any';
}

function advanceTs(s: SeqState, ts: number): Expect {
  if (ts > s.maxTs) {
    s.maxTs = ts;
    return 'new';
  }
  return 'any';
}

/**
 * SenML readings are stored with their time in ms as seq (RFC 8428 has no sequence number), so
 * a stored reading whose seq equals its instant in ms is taken for one when the state is loaded
 * from the database. (A JSON device that counts in epoch milliseconds looks the same; it then
 * starts without a baseline, which only means its first reading sets one.)
 */
export const looksUnsequenced = (seq: number, tsMs: number): boolean => seq === tsMs;
