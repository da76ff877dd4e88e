import type { SQL } from 'drizzle-orm';
import type { DbExecutor } from '../db/scoped.ts';
import type { AuditRow } from '../db/schema/index.ts';
import { auditRepo, type AuditFilter } from './audit-repo.ts';

export type { AuditFilter } from './audit-repo.ts';

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

/**
 * An entry as people read it: the signed fields, who the actor is called now (`actorName`), and
 * where the request came from while that is still kept (audit_request_meta: not signed, pruned
 * after SIGNIN_METADATA_RETENTION_DAYS and on erasure; entries signed before it carry their own).
 */
export function auditEntryView(
  row: AuditRow,
  meta: { ip: string | null; userAgent: string | null } | null,
  actorName: string | null,
) {
  const e = auditEntryJson(row);
  return {
    ...e,
    actorName: actorName ?? e.actorId,
    ip: e.ip ?? meta?.ip ?? null,
    userAgent: e.userAgent ?? meta?.userAgent ?? null,
  };
}
export type AuditEntryView = ReturnType<typeof auditEntryView>;

/** Entries with their request metadata and actor name, in the given order. */
export async function selectAuditViews(
  db: DbExecutor,
  cond: SQL | undefined,
  order: 'asc' | 'desc',
  limit: number,
): Promise<AuditEntryView[]> {
  const rows = await auditRepo.views(db, cond, order, limit);
  return rows.map((r) => auditEntryView(r.entry, r.meta, r.actorName));
}

/** Newest first, keyset-paginated: pass the previous page's nextBeforeId. */
export async function listAudit(
  db: DbExecutor,
  filter: AuditFilter,
  page: { limit: number; beforeId?: number | undefined },
) {
  const rows = (await auditRepo.page(db, filter, page.beforeId, page.limit + 1)).map((r) =>
    auditEntryView(r.entry, r.meta, r.actorName),
  );
  const more = rows.length > page.limit;
  const entries = rows.slice(0, page.limit);
  return { entries, nextBeforeId: more ? entries[entries.length - 1]!.id : null };
}

/**
 * In chain order (oldest first), in batches, for NDJSON export (memory stays flat however long
 * the log is). Unfiltered, the export is what the offline verifier checks (audit-verify-offline.ts).
 * Only the signed fields: people appear by id, and request metadata (not signed) stays home.
 */
export async function* exportAudit(
  db: DbExecutor | (<T>(fn: (db: DbExecutor) => Promise<T>) => Promise<T>),
  filter: AuditFilter,
  batchSize = 500,
): AsyncGenerator<AuditEntryJson> {
  // A function runs each batch in a transaction of its own (a route's scoped one): a long
  // download holds no transaction open between batches.
  const run = typeof db === 'function' ? db : <T>(fn: (d: DbExecutor) => Promise<T>) => fn(db);
  let lastSeq = 0;
  for (;;) {
    const after = lastSeq;
    const rows = await run((d) => auditRepo.matchingAfter(d, filter, after, batchSize));
    if (rows.length === 0) return;
    for (const row of rows) yield auditEntryJson(row);
    lastSeq = rows[rows.length - 1]!.seq;
  }
}
