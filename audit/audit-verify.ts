import { asc, gt } from 'drizzle-orm';
import type { DbExecutor } from '../db/scoped.ts';
import { auditAnchor, auditLog } from '../db/schema/index.ts';
import { entryHash, GENESIS_HASH } from './audit-fns.ts';

export interface VerifyResult {
  ok: boolean;
  checked: number;
  /** The newest entry checked: keep it outside the database to detect removal of the tail. */
  head: { id: number; hash: string } | null;
  firstBroken?: { id: number; reason: string };
}

/**
 * Recomputes the chain from its start (genesis, or the anchor the retention job left) and stops
 * at the first entry whose content does not match its hash or whose prev_hash does not match the
 * entry before it.
 */
export async function verifyAuditChain(db: DbExecutor, opts: { batchSize?: number } = {}): Promise<VerifyResult> {
  const batchSize = opts.batchSize ?? 1000;
  const [anchor] = await db.select().from(auditAnchor);
  let expectedPrev: Buffer = anchor?.lastHash ?? GENESIS_HASH;
  let lastId = 0;
  let checked = 0;
  let head: VerifyResult['head'] = null;
  for (;;) {
    const rows = await db.select().from(auditLog).where(gt(auditLog.id, lastId)).orderBy(asc(auditLog.id)).limit(batchSize);
    if (rows.length === 0) break;
    for (const row of rows) {
      if (!row.prevHash.equals(expectedPrev)) {
        const reason = checked === 0 ? 'chain start does not match genesis or the retention anchor (entries removed?)' : 'prev_hash does not match the previous entry (an entry was removed or altered)';
        return { ok: false, checked, head, firstBroken: { id: row.id, reason } };
      }
      const recomputed = entryHash({ ...row, ip: row.ip ?? null }, row.prevHash);
      if (!recomputed.equals(row.hash)) {
        return { ok: false, checked, head, firstBroken: { id: row.id, reason: 'content does not match its hash (the entry was altered)' } };
      }
      expectedPrev = row.hash;
      lastId = row.id;
      checked += 1;
      head = { id: row.id, hash: row.hash.toString('hex') };
    }
  }
  return { ok: true, checked, head };
}
