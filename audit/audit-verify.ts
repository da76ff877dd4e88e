import type { KeyObject } from 'node:crypto';
import type { DbExecutor } from '../db/scoped.ts';
import type { AuditRow } from '../db/schema/index.ts';
import { auditRepo } from './audit-repo.ts';
import {
  createChainVerifier,
  type LoadedCheckpoint,
  type VerifiableEntry,
  type VerifyResult,
} from './audit-verify-fns.ts';

export type { VerifyResult } from './audit-verify-fns.ts';

export function verifiableRow(row: AuditRow): VerifiableEntry {
  return { ...row, ip: row.ip ?? null, keyId: row.keyId ?? null, signature: row.signature ?? null };
}

/**
 * Verifies the chain in the database, in position order, against the trusted public keys and
 * the signed checkpoints kept outside it (audit-verify-fns.ts says what is checked). Stops at
 * the first broken entry.
 */
export async function verifyAuditChain(
  db: DbExecutor,
  opts: {
    publicKeys: Map<string, KeyObject>;
    checkpoints?: readonly LoadedCheckpoint[];
    batchSize?: number;
  },
): Promise<VerifyResult> {
  const batchSize = opts.batchSize ?? 1000;
  const verifier = createChainVerifier({
    publicKeys: opts.publicKeys,
    checkpoints: opts.checkpoints ?? [],
  });
  let lastSeq = 0;
  for (;;) {
    const rows = await auditRepo.entriesAfter(db, lastSeq, batchSize);
    if (rows.length === 0) break;
    for (const row of rows) {
      if (verifier.push(verifiableRow(row))) return verifier.finish();
    }
    lastSeq = rows[rows.length - 1]!.seq;
  }
  return verifier.finish();
}
