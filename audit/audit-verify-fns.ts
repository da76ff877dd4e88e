import type { KeyObject } from 'node:crypto';
import {
  entryHash,
  GENESIS_HASH,
  signedEntryHash,
  type ChainedFields,
  type SignedCheckpoint,
} from './audit-fns.ts';
import { verifyCheckpointSignature, verifyEntrySignature } from './audit-signer.ts';

/**
 * The verifier itself: pure, fed one entry at a time in chain order, from the database
 * (audit-verify.ts) or from an export file (audit-verify-offline.ts). No database import here.
 *
 * It checks, for every entry: its position (seq) follows the previous one with no gap; its
 * prev_hash is the previous entry's hash; its hash recomputes from its fields; its signature
 * verifies under a trusted key (entries written before the key existed may form an unsigned
 * prefix, anchored by the first signed entry or a checkpoint); it is not dated before the
 * previous entry; and every signed checkpoint at its position names its hash and is not older
 * than it. At the end: no checkpoint covers positions beyond the last entry (tail truncation),
 * and a chain that does not start at position 1 starts where a signed `audit.retention` entry
 * says the retention job removed its predecessors.
 */

export interface VerifiableEntry extends ChainedFields {
  /** The row id (database) or the export's id; informative only: positions come from seq. */
  id: number | null;
  seq: number;
  prevHash: Buffer;
  hash: Buffer;
  keyId: string | null;
  signature: Buffer | null;
}

export interface ChainProblem {
  /** Chain position of the first bad entry (for missing entries: the first missing position). */
  seq: number;
  /** Row id of the entry where it was found (null when the entry is missing). */
  id: number | null;
  reason: string;
}

export interface LoadedCheckpoint {
  /** Where it came from (file name), for messages. */
  source: string;
  checkpoint: SignedCheckpoint;
}

export interface VerifyResult {
  ok: boolean;
  /** Entries verified before the first problem (all of them when ok). */
  checked: number;
  head: { seq: number; id: number | null; hash: string } | null;
  /** Unsigned entries from before the audit key existed (the legacy prefix). */
  legacy: number;
  /** Checkpoints whose signature verified and whose position was checked against the chain. */
  checkpoints: { checked: number; latest: { size: number; at: string } | null };
  firstBroken?: ChainProblem;
  /** Checkpoint files that are not validly signed by a trusted key (someone wrote them without it). */
  badCheckpoints?: { source: string; reason: string }[];
}

export const RETENTION_ACTION = 'audit.retention';

export function createChainVerifier(opts: {
  publicKeys: Map<string, KeyObject>;
  checkpoints?: readonly LoadedCheckpoint[];
}) {
  const badCheckpoints: { source: string; reason: string }[] = [];
  const bySize = new Map<number, LoadedCheckpoint[]>();
  for (const cp of opts.checkpoints ?? []) {
    const reason = checkpointProblem(cp.checkpoint, opts.publicKeys);
    if (reason) badCheckpoints.push({ source: cp.source, reason });
    else bySize.set(cp.checkpoint.size, [...(bySize.get(cp.checkpoint.size) ?? []), cp]);
  }
  let problem: ChainProblem | undefined;
  let first: VerifiableEntry | undefined;
  let prev: VerifiableEntry | undefined;
  let checked = 0;
  let legacy = 0;
  let sawSigned = false;
  let anchoredUpTo = 0;
  // A checkpoint of the empty log (genesis hash, checked above) needs no entry to match.
  let checkpointsChecked = bySize.get(0)?.length ?? 0;
  const retentions: { throughSeq: number; throughHash: string }[] = [];

  function check(e: VerifiableEntry): ChainProblem | undefined {
    const at = (reason: string): ChainProblem => ({ seq: e.seq, id: e.id, reason });
    if (prev) {
      if (e.seq !== prev.seq + 1) {
        return e.seq > prev.seq + 1
          ? {
              seq: prev.seq + 1,
              id: e.id,
              reason: `entries at positions ${prev.seq + 1}..${e.seq - 1} are missing (the next one present is #${e.seq})`,
            }
          : {
              seq: prev.seq + 1,
              id: e.id,
              reason: `the entry after position ${prev.seq} says it is #${e.seq}: entries were reordered or repeated`,
            };
      }
      if (!e.prevHash.equals(prev.hash))
        return at(
          'prev_hash does not match the previous entry (an entry was removed, inserted or altered)',
        );
    }
    if (e.signature === null || e.keyId === null) {
      if (sawSigned) return at('entry is not signed (written without the audit key, e.g. by SQL)');
      if (!entryHash(e, e.prevHash).equals(e.hash))
        return at('content does not match its hash (the entry was altered)');
      legacy += 1;
    } else {
      const key = opts.publicKeys.get(e.keyId);
      if (!key) return at(`signed with key ${e.keyId}, which is not a trusted audit key`);
      if (!signedEntryHash({ ...e, keyId: e.keyId }, e.prevHash).equals(e.hash))
        return at('content does not match its hash (the entry was altered)');
      if (!verifyEntrySignature(key, e.hash, e.signature))
        return at(
          'signature does not verify (the entry was written or re-chained without the audit key)',
        );
      if (prev && e.at.getTime() < prev.at.getTime())
        return at(
          `dated ${e.at.toISOString()}, before the previous entry (${prev.at.toISOString()})`,
        );
      sawSigned = true;
      anchoredUpTo = e.seq;
      const retained =
        e.action === RETENTION_ACTION
          ? (e.after as { throughSeq?: unknown; throughHash?: unknown } | null)
          : null;
      if (
        retained &&
        typeof retained.throughSeq === 'number' &&
        typeof retained.throughHash === 'string'
      )
        retentions.push({ throughSeq: retained.throughSeq, throughHash: retained.throughHash });
    }
    for (const cp of bySize.get(e.seq) ?? []) {
      if (cp.checkpoint.headHash !== e.hash.toString('hex'))
        return at(
          `differs from the signed checkpoint ${cp.source} (the entry or one before it was replaced)`,
        );
      if (Date.parse(cp.checkpoint.at) < e.at.getTime())
        return at(
          `dated after the signed checkpoint ${cp.source} that covers it (back- or forward-dated)`,
        );
      checkpointsChecked += 1;
      anchoredUpTo = Math.max(anchoredUpTo, e.seq);
    }
    return undefined;
  }

  return {
    /** Feeds the next entry; returns the problem (and ignores further entries) once one is found. */
    push(e: VerifiableEntry): ChainProblem | undefined {
      if (problem) return problem;
      first ??= e;
      problem = check(e);
      if (!problem) {
        prev = e;
        checked += 1;
      }
      return problem;
    },
    get failed(): boolean {
      return problem !== undefined;
    },
    finish(): VerifyResult {
      const startProblem = first ? chainStartProblem(first, retentions) : undefined;
      const lastSeq = prev?.seq ?? (first ? first.seq - 1 : 0);
      let found = startProblem ?? problem;
      if (!found) {
        // Tail truncation: a checkpoint covers positions the chain no longer has.
        const beyond = [...bySize.values()]
          .flat()
          .filter((cp) => cp.checkpoint.size > lastSeq)
          .sort((a, b) => b.checkpoint.size - a.checkpoint.size)[0];
        if (beyond)
          found = {
            seq: lastSeq + 1,
            id: null,
            reason: `the chain ends at position ${lastSeq} but the signed checkpoint ${beyond.source} covers ${beyond.checkpoint.size} entries: the tail was removed`,
          };
      }
      if (!found && prev && legacy > 0 && anchoredUpTo < prev.seq) {
        found = {
          seq: anchoredUpTo + 1,
          id: null,
          reason:
            'unsigned entries not yet covered by any signed entry or checkpoint (run `thamani audit checkpoint`)',
        };
      }
      const latest = [...bySize.values()]
        .flat()
        .sort(
          (a, b) =>
            b.checkpoint.size - a.checkpoint.size ||
            Date.parse(b.checkpoint.at) - Date.parse(a.checkpoint.at),
        )[0];
      return {
        ok: !found && badCheckpoints.length === 0,
        checked: startProblem ? 0 : checked,
        head: prev ? { seq: prev.seq, id: prev.id, hash: prev.hash.toString('hex') } : null,
        legacy,
        checkpoints: {
          checked: checkpointsChecked,
          latest: latest ? { size: latest.checkpoint.size, at: latest.checkpoint.at } : null,
        },
        ...(found ? { firstBroken: found } : {}),
        ...(badCheckpoints.length > 0 ? { badCheckpoints } : {}),
      };
    },
  };
}

export type ChainVerifier = ReturnType<typeof createChainVerifier>;

/**
 * Position 1 chains to the genesis hash. A chain that starts later lost its predecessors: only
 * the retention job may do that, and it says so in a signed entry (throughSeq, throughHash). An
 * unsigned first entry at position 1 is a legacy prefix whose start (genesis, or the anchor an
 * earlier retention left) predates the key; the first signed entry covers everything after it.
 */
function chainStartProblem(
  first: VerifiableEntry,
  retentions: { throughSeq: number; throughHash: string }[],
): ChainProblem | undefined {
  if (first.seq === 1 && (first.prevHash.equals(GENESIS_HASH) || first.signature === null))
    return undefined;
  const attested = retentions.some(
    (r) => r.throughSeq === first.seq - 1 && r.throughHash === first.prevHash.toString('hex'),
  );
  if (attested) return undefined;
  if (first.seq === 1)
    return { seq: 1, id: first.id, reason: 'the first entry does not chain to the genesis hash' };
  // Point at the first position nothing accounts for: after the latest retention that removed less.
  const from =
    Math.max(0, ...retentions.map((r) => r.throughSeq).filter((s) => s < first.seq - 1)) + 1;
  return {
    seq: from,
    id: null,
    reason: `entries at positions ${from}..${first.seq - 1} are missing and no signed retention entry says they were removed (the chain starts at #${first.seq})`,
  };
}

function checkpointProblem(cp: SignedCheckpoint, keys: Map<string, KeyObject>): string | undefined {
  if (
    cp.v !== 1 ||
    !Number.isSafeInteger(cp.size) ||
    cp.size < 0 ||
    typeof cp.headHash !== 'string' ||
    typeof cp.at !== 'string' ||
    Number.isNaN(Date.parse(cp.at)) ||
    typeof cp.signature !== 'string'
  )
    return 'not a checkpoint (format 1)';
  const key = keys.get(cp.keyId);
  if (!key) return `signed with key ${String(cp.keyId)}, which is not a trusted audit key`;
  if (!verifyCheckpointSignature(key, cp, cp.signature)) return 'signature does not verify';
  if (cp.size === 0 && cp.headHash !== GENESIS_HASH.toString('hex'))
    return 'an empty-log checkpoint must name the genesis hash';
  return undefined;
}
