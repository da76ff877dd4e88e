import { isIP } from 'node:net';
import { desc, sql } from 'drizzle-orm';
import type { DbExecutor } from '../db/scoped.ts';
import type { Db } from '../db/client.ts';
import { auditLog } from '../db/schema/index.ts';
import { entryHash, GENESIS_HASH, type ChainedFields } from './audit-fns.ts';

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
export type AuditActor = Pick<AuditEntry, 'actorId' | 'actorRole' | 'ip' | 'userAgent' | 'requestId'>;

/** Any transaction-scoped key: serialises appends so each entry chains to the one before it. */
const CHAIN_LOCK = 7243002;

export function createAuditLog(deps: { db: Db }) {
  async function append(tx: DbExecutor, entry: AuditEntry): Promise<{ id: number; hash: Buffer }> {
    // The lock serialises the chain; host(inet) gives the address exactly as the column will read
    // back, so the hash verifies later whatever spelling the caller used ('::FFFF:…', '/32').
    const ipIn = entry.ip && isIP(entry.ip.split('/')[0]!) ? entry.ip : null;
    const locked = await tx.execute<{ ip: string | null }>(sql`SELECT pg_advisory_xact_lock(${CHAIN_LOCK}), host(${ipIn}::inet) AS ip`);
    const [last] = await tx.select({ hash: auditLog.hash }).from(auditLog).orderBy(desc(auditLog.id)).limit(1);
    const prevHash = last?.hash ?? GENESIS_HASH;
    const fields: ChainedFields = {
      at: new Date(),
      actorId: entry.actorId,
      actorRole: entry.actorRole,
      ip: locked.rows[0]?.ip ?? null,
      userAgent: entry.userAgent ?? null,
      requestId: entry.requestId ?? null,
      action: entry.action,
      targetType: entry.targetType,
      targetId: entry.targetId ?? null,
      before: entry.before ?? null,
      after: entry.after ?? null,
    };
    const hash = entryHash(fields, prevHash);
    const [row] = await tx.insert(auditLog).values({ ...fields, prevHash, hash }).returning({ id: auditLog.id });
    return { id: row!.id, hash };
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
