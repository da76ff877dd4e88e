import { asc, desc, gt, sql } from 'drizzle-orm';
import type { DbExecutor } from '../db/scoped.ts';
import { auditAnchor, auditLog, type AuditRow } from '../db/schema/index.ts';

/**
 * The SQL of the audit store's maintenance: its head (checkpoints), reading the chain in order
 * (verification), and retention (audit_log_apply_retention, migrations 0007 and 0015, run as the
 * table owner). Appending an entry and the queries of the API stay in audit-service.ts and
 * audit-query.ts for now.
 */
export const auditRepo = {
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
