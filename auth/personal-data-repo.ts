import { and, eq, inArray, or, sql } from 'drizzle-orm';
import type { DbExecutor } from '../db/scoped.ts';
import { apiTokens, auditLog, loginThrottle } from '../db/schema/index.ts';
import { selectAuditViews } from '../audit/audit-query.ts';
import { sha256 } from './password-fns.ts';
import { exportedRecords, sourceKey } from './personal-records.ts';

/**
 * Sign-in metadata: the client IPs and user agents of operators, in `sessions` and beside the
 * audit log (`audit_request_meta`). Immutable records never hold them, nor names or e-mail
 * addresses (issue 17 §4): they are kept SIGNIN_METADATA_RETENTION_DAYS, removed at erasure,
 * and part of a person's data export. docs/security-model.md, "Privacy".
 */

/** Every actor id a person appears under in the audit log: their user id and their API tokens. */
export async function actorIdsOf(tx: DbExecutor, userId: string): Promise<string[]> {
  const tokens = await tx
    .select({ id: apiTokens.id })
    .from(apiTokens)
    .where(eq(apiTokens.ownerId, userId));
  return [userId, ...tokens.map((t) => `token:${t.id}`)];
}

/** Audit entries a person made or that are about them (target user), for their export. */
function ofPerson(actorIds: string[], userId: string) {
  return or(
    inArray(auditLog.actorId, actorIds),
    and(eq(auditLog.targetType, 'user'), eq(auditLog.targetId, userId)),
  );
}

/** The entries by and about a person, oldest first, with the request metadata still kept. */
export async function auditEntriesOfPerson(tx: DbExecutor, userId: string, limit = 100_000) {
  return selectAuditViews(tx, ofPerson(await actorIdsOf(tx, userId), userId), 'asc', limit);
}

/**
 * Removes a person's sign-in metadata, in the erasure's transaction: their sessions (IP, user
 * agent), the request metadata of the audit entries they made and of the anonymous attempts to
 * sign in as them (security.login_failed), and their account's throttle counter. Metadata of
 * what others did to them (an admin's own IP when erasing them) is the others', and stays.
 */
export async function eraseSignInMetadata(
  tx: DbExecutor,
  user: { id: string; username: string },
): Promise<void> {
  const actorIds = await actorIdsOf(tx, user.id);
  // Sessions are deleted by thamani_user_erase (the API role may not delete them, migration 0019).
  await tx.execute(sql`
    DELETE FROM audit_request_meta m USING audit_log l
     WHERE m.audit_id = l.id
       AND (l.actor_id IN (${sql.join(
         actorIds.map((a) => sql`${a}`),
         sql`, `,
       )}) OR (l.target_type = 'user' AND l.target_id = ${user.id} AND l.actor_id = 'anonymous'))`);
  // The throttle keys by a hash of the account name (auth/throttle.ts); the row would name her to anyone who hashes it.
  await tx
    .delete(loginThrottle)
    .where(eq(loginThrottle.keyHash, sha256(`account:${user.username.toLowerCase()}`)));
}

/**
 * The retention of sign-in metadata: request metadata and ended sessions last seen before
 * `cutoff` go, and so do throttle windows that started before it. Returns what was removed.
 */
export async function pruneSignInMetadata(
  db: DbExecutor,
  cutoff: Date,
  now: Date,
): Promise<{ requestMeta: number; sessions: number }> {
  const meta = await db.execute(sql`DELETE FROM audit_request_meta WHERE at < ${cutoff}`);
  const ended = await db.execute(
    sql`DELETE FROM sessions WHERE last_seen_at < ${cutoff} AND (revoked_at IS NOT NULL OR expires_at <= ${now})`,
  );
  await db.execute(sql`DELETE FROM login_throttle WHERE window_start < ${cutoff}`);
  return { requestMeta: meta.rowCount ?? 0, sessions: ended.rowCount ?? 0 };
}

/**
 * The rows of each exported source that name one of the person's actor ids, without the
 * omitted columns. In the caller's scope (row-level security applies like any read).
 */
export async function personalRecords(
  tx: DbExecutor,
  actorIds: readonly string[],
): Promise<Record<string, Record<string, unknown>[]>> {
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const s of exportedRecords) {
    // Actor ids are uuids or `token:<uuid>`: no commas, so one text parameter carries them all.
    const res = await tx.execute(
      sql`SELECT * FROM ${sql.identifier(s.table)} WHERE ${sql.identifier(s.column)}::text = ANY(string_to_array(${actorIds.join(',')}, ',')) LIMIT 100000`,
    );
    const rows = (res as unknown as { rows: Record<string, unknown>[] }).rows;
    // Binary columns are hashes of live credentials (token_hash) or images: never exported.
    out[sourceKey(s)] = rows.map((r) =>
      Object.fromEntries(
        Object.entries(r).filter(
          ([k, v]) => !s.omit?.includes(k) && !Buffer.isBuffer(v) && !(v instanceof Uint8Array),
        ),
      ),
    );
  }
  return out;
}
