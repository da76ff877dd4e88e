import { and, asc, desc, eq, gt, gte, lt, lte, type SQL } from 'drizzle-orm';
import type { DbExecutor } from '../db/scoped.ts';
import { auditLog, type AuditRow } from '../db/schema/index.ts';

export interface AuditFilter {
  actorId?: string | undefined;
  action?: string | undefined;
  targetType?: string | undefined;
  targetId?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
}

export function auditEntryJson(row: AuditRow) {
  return {
    id: row.id,
    seq: row.seq,
    at: row.at.toISOString(),
    actorId: row.actorId,
    actorRole: row.actorRole,
    ip: row.ip ?? null,
    userAgent: row.userAgent,
    requestId: row.requestId,
    action: row.action,
    targetType: row.targetType,
    targetId: row.targetId,
    before: row.before ?? null,
    after: row.after ?? null,
    prevHash: row.prevHash.toString('hex'),
    hash: row.hash.toString('hex'),
    keyId: row.keyId ?? null,
    /** Base64 Ed25519 signature; null for the unsigned entries from before the audit key existed. */
    signature: row.signature ? row.signature.toString('base64') : null,
  };
}
export type AuditEntryJson = ReturnType<typeof auditEntryJson>;

function where(f: AuditFilter): SQL[] {
  const c: SQL[] = [];
  if (f.actorId) c.push(eq(auditLog.actorId, f.actorId));
  if (f.action) c.push(eq(auditLog.action, f.action));
  if (f.targetType) c.push(eq(auditLog.targetType, f.targetType));
  if (f.targetId) c.push(eq(auditLog.targetId, f.targetId));
  if (f.from) c.push(gte(auditLog.at, f.from));
  if (f.to) c.push(lte(auditLog.at, f.to));
  return c;
}

/** Newest first, keyset-paginated: pass the previous page's nextBeforeId. */
export async function listAudit(db: DbExecutor, filter: AuditFilter, page: { limit: number; beforeId?: number | undefined }) {
  const rows = await db
    .select()
    .from(auditLog)
    .where(and(...where(filter), page.beforeId ? lt(auditLog.id, page.beforeId) : undefined))
    .orderBy(desc(auditLog.id))
    .limit(page.limit + 1);
  const more = rows.length > page.limit;
  const entries = rows.slice(0, page.limit).map(auditEntryJson);
  return { entries, nextBeforeId: more ? entries[entries.length - 1]!.id : null };
}

/**
 * In chain order (oldest first), in batches, for NDJSON export (memory stays flat however long
 * the log is). Unfiltered, the export is what the offline verifier checks (audit-verify-offline.ts).
 */
export async function* exportAudit(db: DbExecutor | (<T>(fn: (db: DbExecutor) => Promise<T>) => Promise<T>), filter: AuditFilter, batchSize = 500): AsyncGenerator<AuditEntryJson> {
  // A function runs each batch in a transaction of its own (a route's scoped one): a long
  // download holds no transaction open between batches.
  const run = typeof db === 'function' ? db : <T>(fn: (d: DbExecutor) => Promise<T>) => fn(db);
  let lastSeq = 0;
  for (;;) {
    const after = lastSeq;
    const rows = await run((d) => d.select().from(auditLog).where(and(...where(filter), gt(auditLog.seq, after))).orderBy(asc(auditLog.seq)).limit(batchSize));
    if (rows.length === 0) return;
    for (const row of rows) yield auditEntryJson(row);
    lastSeq = rows[rows.length - 1]!.seq;
  }
}
