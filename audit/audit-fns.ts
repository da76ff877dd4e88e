import { createHash } from 'node:crypto';

/** The hash chain starts from 32 zero bytes. */
export const GENESIS_HASH: Buffer = Buffer.alloc(32);

/** JSON with object keys sorted at every depth: one byte sequence for one value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export interface ChainedFields {
  at: Date;
  actorId: string;
  actorRole: string;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  action: string;
  targetType: string;
  targetId: string | null;
  before: unknown;
  after: unknown;
}

/** The fields both entry formats hash (canonicalJson sorts keys, so their order is free). */
function chainedBody(fields: ChainedFields, prevHash: Buffer): Record<string, unknown> {
  return {
    at: fields.at.toISOString(),
    actorId: fields.actorId,
    actorRole: fields.actorRole,
    ip: fields.ip,
    userAgent: fields.userAgent,
    requestId: fields.requestId,
    action: fields.action,
    targetType: fields.targetType,
    targetId: fields.targetId,
    before: fields.before ?? null,
    after: fields.after ?? null,
    prevHash: prevHash.toString('hex'),
  };
}

export function entryHash(fields: ChainedFields, prevHash: Buffer): Buffer {
  return createHash('sha256')
    .update(canonicalJson(chainedBody(fields, prevHash)))
    .digest();
}

/**
 * A signed entry (format 1): the hash also covers the chain position and the signing key's id,
 * so a signature cannot be moved to another position or re-attributed to another key.
 */
export interface SignedFields extends ChainedFields {
  seq: number;
  keyId: string;
}

export function signedEntryHash(fields: SignedFields, prevHash: Buffer): Buffer {
  const canonical = canonicalJson({
    v: 1,
    seq: fields.seq,
    ...chainedBody(fields, prevHash),
    keyId: fields.keyId,
  });
  return createHash('sha256').update(canonical).digest();
}

/**
 * What is signed. Each kind of signed object has its own prefix (domain separation), so an
 * entry signature can never be presented as a checkpoint signature or the other way round.
 */
export function entrySigningInput(hash: Buffer): Buffer {
  return Buffer.concat([Buffer.from('thamani-audit-entry/v1\n'), hash]);
}

/** A signed statement of the chain head: "the log had `size` entries, the last one hashing to `headHash`, at `at`". */
export interface CheckpointBody {
  v: 1;
  /** Chain position of the head (= entries ever appended, like RFC 9162's tree_size). 0: empty. */
  size: number;
  /** Hex hash of the entry at `size` (the genesis hash when size is 0). */
  headHash: string;
  /** RFC 3339 time the checkpoint was made. */
  at: string;
  keyId: string;
}

export interface SignedCheckpoint extends CheckpointBody {
  /** Base64 Ed25519 signature over checkpointSigningInput(body). */
  signature: string;
}

export function checkpointSigningInput(body: CheckpointBody): Buffer {
  const { v, size, headHash, at, keyId } = body;
  return Buffer.from(
    `thamani-audit-checkpoint/v1\n${canonicalJson({ v, size, headHash, at, keyId })}`,
  );
}
