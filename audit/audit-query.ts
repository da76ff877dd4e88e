import { and, asc, desc, eq, gt, gte, lt, lte, sql, type SQL } from 'drizzle-orm';
import type { DbExecutor } from '../db/scoped.ts';
import { auditLog, auditRequestMeta, type AuditRow } from '../db/schema/index.ts';

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

/** The display name of an actor id, looked up now: "erased user #41" once erased (migration 0017). */
export const actorDisplayName = (actorId: SQL | typeof auditLog.actorId) =>
  sql<string>`actor_display_name(${actorId})`;

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
  const rows = await db
    .select({
      entry: auditLog,
      meta: { ip: auditRequestMeta.ip, userAgent: auditRequestMeta.userAgent },
      actorName: actorDisplayName(auditLog.actorId),
    })
    .from(auditLog)
    .leftJoin(auditRequestMeta, eq(auditRequestMeta.auditId, auditLog.id))
    .where(cond)
    .orderBy(order === 'asc' ? asc(auditLog.seq) : desc(auditLog.id))
    .limit(limit);
  return rows.map((r) => auditEntryView(r.entry, r.meta, r.actorName));
}

/** Newest first, keyset-paginated: pass the previous page's nextBeforeId. */
export async function listAudit(
  db: DbExecutor,
  filter: AuditFilter,
  page: { limit: number; beforeId?: number | undefined },
) {
  const rows = await selectAuditViews(
    db,
    and(...where(filter), page.beforeId ? lt(auditLog.id, page.beforeId) : undefined),
    'desc',
    page.limit + 1,
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
    const rows = await run((d) =>
      d
        .select()
        .from(auditLog)
        .where(and(...where(filter), gt(auditLog.seq, after)))
        .orderBy(asc(auditLog.seq))
        .limit(batchSize),
    );
    if (rows.length === 0) return;
    for (const row of rows) yield auditEntryJson(row);
    lastSeq = rows[rows.length - 1]!.seq;
  }
}
