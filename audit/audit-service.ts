import { isIP } from 'node:net';
import type { DbExecutor } from '../db/scoped.ts';
import type { Db } from '../db/client.ts';
import { auditRepo } from './audit-repo.ts';
import { GENESIS_HASH, signedEntryHash, type SignedFields } from './audit-fns.ts';
import type { AuditSigner } from './audit-signer.ts';

export interface AuditEntry {
  actorId: string;
  actorRole: string;
  ip?: string | null;
  userAgent?: string | null;
  requestId?: string | null;
  /** Dotted verb, e.g. `device.create`, `certificate.revoke`, `security.publish_denied`. */
  action: string;
  targetType: string;
  targetId?: string | null;
  before?: unknown;
  after?: unknown;
}

/** Who did it, from where: the part of an entry that comes from the request or the CLI. */
export type AuditActor = Pick<
  AuditEntry,
  'actorId' | 'actorRole' | 'ip' | 'userAgent' | 'requestId'
>;

export { CHAIN_LOCK } from './audit-repo.ts';

/** How far the previous entry may be ahead of this clock and still date the next one. */
export const MAX_CLOCK_STEP_MS = 5 * 60_000;

/**
 * The audit log's writer. Every process that appends (the API, the gateway's security events,
 * the CLI) holds the signing key (audit-signer.ts); a row without a valid signature fails
 * verification whoever inserted it.
 */
export function createAuditLog(deps: { db: Db; signer: AuditSigner }) {
  const { signer } = deps;
  async function append(tx: DbExecutor, entry: AuditEntry): Promise<{ id: number; hash: Buffer }> {
    // Where an operator's request came from is personal data with a retention of its own that
    // must go when the person is erased, and a signed entry never changes: so it is kept beside
    // the entry (audit_request_meta), never in it (issue 17 §4). A device's address (MQTT and TLS
    // refusals, enrolment: actorRole 'device') is about the fleet, not a person, and stays signed
    // for the audit's full term. Entries signed before this rule keep what they hold.
    const ipIn = entry.ip && isIP(entry.ip.split('/')[0]!) ? entry.ip : null;
    const signedMeta = entry.actorRole === 'device';
    // The lock serialises the chain: the position (seq) is the last one + 1 and never skips, even
    // when a transaction that took one rolls back (it releases the lock and the position with it).
    // host(inet) gives the address exactly as the column will read back, so the hash verifies
    // later whatever spelling the caller used ('::FFFF:…', '/32').
    const lockedIp = await auditRepo.lockChain(tx, signedMeta ? ipIn : null);
    const last = await auditRepo.head(tx);
    const prevHash = last?.hash ?? GENESIS_HASH;
    // Never dated before the entry it follows, so that a clock stepped back a little does not read
    // as tampering; but only within MAX_CLOCK_STEP_MS, so that a row forged with a far-future date
    // cannot drag every later entry's time along with it.
    const now = new Date();
    const clamp = last && last.at > now && last.at.getTime() - now.getTime() <= MAX_CLOCK_STEP_MS;
    const fields: SignedFields = {
      seq: (last?.seq ?? 0) + 1,
      keyId: signer.keyId,
      at: clamp ? last.at : now,
      actorId: entry.actorId,
      actorRole: entry.actorRole,
      ip: lockedIp,
      userAgent: signedMeta ? (entry.userAgent ?? null) : null,
      requestId: entry.requestId ?? null,
      action: entry.action,
      targetType: entry.targetType,
      targetId: entry.targetId ?? null,
      before: entry.before ?? null,
      after: entry.after ?? null,
    };
    const hash = signedEntryHash(fields, prevHash);
    // Signing (~50 µs of Ed25519) happens under the lock because it covers prev_hash and seq;
    // the lock is held for the rest of the caller's transaction anyway (bench: npm run bench audit).
    const signature = signer.signEntry(hash);
    const values = { ...fields, prevHash, hash, signature };
    if (signedMeta || (ipIn === null && !entry.userAgent))
      return { id: await auditRepo.insertEntry(tx, values), hash };
    // The metadata row in the same statement (a data-modifying CTE): no extra round trip while
    // the chain lock is held.
    const id = await auditRepo.insertEntryWithMeta(tx, values, {
      at: fields.at,
      ip: ipIn,
      userAgent: entry.userAgent ?? null,
    });
    return { id, hash };
  }

  return {
    /**
     * Appends one entry. Pass the transaction that makes the change, so that the change and its
     * audit entry commit together or not at all.
     */
    record(entry: AuditEntry, tx?: DbExecutor): Promise<{ id: number; hash: Buffer }> {
      return tx ? append(tx, entry) : deps.db.transaction((t) => append(t, entry));
    },
  };
}

export type AuditLog = ReturnType<typeof createAuditLog>;
