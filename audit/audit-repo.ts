import { and, asc, desc, eq, gt, gte, lt, lte, sql, type SQL } from 'drizzle-orm';
import type { DbExecutor } from '../db/scoped.ts';
import { auditAnchor, auditLog, auditRequestMeta, type AuditRow } from '../db/schema/index.ts';

/** A new entry as inserted: the signed fields, prev_hash, hash and signature. */
export type NewAuditRow = typeof auditLog.$inferInsert;

/** Any transaction-scoped key: serialises appends so each entry chains to the one before it. */
export const CHAIN_LOCK = 7243002;

export interface AuditFilter {
  actorId?: string | undefined;
  action?: string | undefined;
  targetType?: string | undefined;
  targetId?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
}

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

/** An entry with its request metadata (audit_request_meta) and who its actor is called now. */
export interface AuditViewRow {
  entry: AuditRow;
  meta: { ip: string | null; userAgent: string | null } | null;
  actorName: string | null;
}

/**
 * The SQL of the audit store: appending to the chain (audit-service.ts), the reads of the API
 * (audit-query.ts), its head (checkpoints), reading the chain in order (verification), and
 * retention (audit_log_apply_retention, migrations 0007 and 0015, run as the table owner).
 */
export const auditRepo = {
  /**
   * Takes the chain lock for the rest of the transaction (CHAIN_LOCK) and reads `ip` back as the
   * inet column will hold it (host(inet)), in one statement.
   */
  lockChain: async (tx: DbExecutor, ip: string | null): Promise<string | null> =>
    (
      await tx.execute<{ ip: string | null }>(
        sql`SELECT pg_advisory_xact_lock(${CHAIN_LOCK}), host(${ip}::inet) AS ip`,
      )
    ).rows[0]?.ip ?? null,

  /** Inserts an entry; its id. */
  insertEntry: async (tx: DbExecutor, values: NewAuditRow): Promise<number> => {
    const [row] = await tx.insert(auditLog).values(values).returning({ id: auditLog.id });
    return row!.id;
  },

  /**
   * Inserts an entry and its request metadata in the same statement (a data-modifying CTE): no
   * extra round trip while the chain lock is held. The entry's id.
   */
  insertEntryWithMeta: async (
    tx: DbExecutor,
    values: NewAuditRow,
    meta: { at: Date; ip: string | null; userAgent: string | null },
  ): Promise<number> => {
    const insertEntry = tx.insert(auditLog).values(values).returning({ id: auditLog.id });
    const inserted = tx.$with('entry').as(insertEntry);
    const [row] = await tx
      .with(inserted)
      .insert(auditRequestMeta)
      .select(
        tx
          .select({
            auditId: inserted.id,
            at: sql<Date>`${meta.at}::timestamptz`.as('at'),
            ip: sql<string | null>`${meta.ip}::inet`.as('ip'),
            userAgent: sql<string | null>`${meta.userAgent}::text`.as('user_agent'),
          })
          .from(inserted),
      )
      .returning({ id: auditRequestMeta.auditId });
    return row!.id;
  },

  /** Entries with their request metadata and actor name, in the given order. */
  views: (
    db: DbExecutor,
    cond: SQL | undefined,
    order: 'asc' | 'desc',
    limit: number,
  ): Promise<AuditViewRow[]> =>
    db
      .select({
        entry: auditLog,
        meta: { ip: auditRequestMeta.ip, userAgent: auditRequestMeta.userAgent },
        actorName: actorDisplayName(auditLog.actorId),
      })
      .from(auditLog)
      .leftJoin(auditRequestMeta, eq(auditRequestMeta.auditId, auditLog.id))
      .where(cond)
      .orderBy(order === 'asc' ? asc(auditLog.seq) : desc(auditLog.id))
      .limit(limit),

  /** Newest first: up to `limit` views matching `filter` with ids below `beforeId` (if given). */
  page: (db: DbExecutor, filter: AuditFilter, beforeId: number | undefined, limit: number) =>
    auditRepo.views(
      db,
      and(...where(filter), beforeId ? lt(auditLog.id, beforeId) : undefined),
      'desc',
      limit,
    ),

  /** Up to `limit` entries matching `filter` after position `afterSeq`, in position order. */
  matchingAfter: (
    db: DbExecutor,
    filter: AuditFilter,
    afterSeq: number,
    limit: number,
  ): Promise<AuditRow[]> =>
    db
      .select()
      .from(auditLog)
      .where(and(...where(filter), gt(auditLog.seq, afterSeq)))
      .orderBy(asc(auditLog.seq))
      .limit(limit),

  /** The newest entry's position, hash and time; undefined while the chain is empty. */
  head: async (db: DbExecutor) =>
    (
      await db
        .select({ seq: auditLog.seq, hash: auditLog.hash, at: auditLog.at })
        .from(auditLog)
        .orderBy(desc(auditLog.seq))
        .limit(1)
    )[0],

  /** Up to `limit` entries after position `afterSeq`, in position order. */
  entriesAfter: (db: DbExecutor, afterSeq: number, limit: number): Promise<AuditRow[]> =>
    db
      .select()
      .from(auditLog)
      .where(gt(auditLog.seq, afterSeq))
      .orderBy(asc(auditLog.seq))
      .limit(limit),

  /** Removes entries older than 7 years and moves the chain anchor; how many went. */
  applyRetention: async (db: DbExecutor): Promise<number> =>
    Number(
      (await db.execute<{ removed: number }>(sql`SELECT audit_log_apply_retention() AS removed`))
        .rows[0]?.removed ?? 0,
    ),

  anchor: async (db: DbExecutor) => (await db.select().from(auditAnchor))[0],
};
