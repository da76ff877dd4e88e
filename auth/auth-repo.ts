import { and, eq, isNull, sql } from 'drizzle-orm';
import type { DbExecutor } from '../db/scoped.ts';
import { sessions, users, type User } from '../db/schema/index.ts';
import type { Role } from './permissions.ts';

/**
 * The SQL of the auth feature: sign-in protection (table login_throttle, keyed by the SHA-256 of
 * `account:` or `ip:` and its value; SQL text: the reservation is one atomic upsert with CASE
 * arms that the builder would only obscure), sessions and the API-token lookup (session-service.ts).
 * Each function runs on the handle it is given: the caller chooses the pool (the API role's, or
 * the owner's where migration 0019 leaves a write to it), the transaction and the scope.
 */
export const authRepo = {
  /** Drops keys whose window opened at or before `before`. */
  async sweepThrottle(db: DbExecutor, before: Date): Promise<void> {
    await db.execute(sql`DELETE FROM login_throttle WHERE window_start <= ${before}`);
  },

  /**
   * One attempt more for each key, in one statement (a window that opened at or before `cutoff`
   * starts again at `now`). Rows are locked in the order given: the account first, then the IP,
   * so two attempts can never wait on each other in a cycle.
   */
  reserveAttempts: async (db: DbExecutor, account: Buffer, ip: Buffer, now: Date, cutoff: Date) =>
    (
      await db.execute<{ key_hash: Buffer; attempts: number; window_start: Date | string }>(sql`
        INSERT INTO login_throttle AS l (key_hash, window_start, attempts)
        VALUES (${account}, ${now}, 1), (${ip}, ${now}, 1)
        ON CONFLICT (key_hash) DO UPDATE SET
          attempts = CASE WHEN l.window_start <= ${cutoff} THEN 1 ELSE l.attempts + 1 END,
          window_start = CASE WHEN l.window_start <= ${cutoff} THEN ${now} ELSE l.window_start END
        RETURNING l.key_hash, l.attempts, l.window_start`)
    ).rows,

  /** Gives one attempt back to each key. */
  async releaseAttempts(db: DbExecutor, account: Buffer, ip: Buffer): Promise<void> {
    await db.execute(
      sql`UPDATE login_throttle SET attempts = greatest(attempts - 1, 0) WHERE key_hash IN (${account}, ${ip})`,
    );
  },

  /** The account starts afresh; the IP gets one attempt back. */
  async clearAccount(db: DbExecutor, account: Buffer, ip: Buffer): Promise<void> {
    await db.execute(sql`
      UPDATE login_throttle SET attempts = CASE WHEN key_hash = ${account} THEN 0 ELSE greatest(attempts - 1, 0) END
       WHERE key_hash IN (${account}, ${ip})`);
  },

  /** The user with this (lower-cased) username. */
  userByUsername: async (db: DbExecutor, username: string): Promise<User | undefined> =>
    (await db.select().from(users).where(eq(users.username, username)))[0],

  async setPasswordHash(db: DbExecutor, userId: string, passwordHash: string): Promise<void> {
    await db.update(users).set({ passwordHash }).where(eq(users.id, userId));
  },

  async insertSession(db: DbExecutor, session: typeof sessions.$inferInsert): Promise<void> {
    await db.insert(sessions).values(session);
  },

  /** A session not revoked, with its user; undefined when there is none. */
  liveSession: async (db: DbExecutor, idHash: Buffer) =>
    (
      await db
        .select({ session: sessions, user: users })
        .from(sessions)
        .innerJoin(users, eq(users.id, sessions.userId))
        .where(and(eq(sessions.idHash, idHash), isNull(sessions.revokedAt)))
    )[0],

  async revokeSession(db: DbExecutor, idHash: Buffer, at: Date): Promise<void> {
    await db.update(sessions).set({ revokedAt: at }).where(eq(sessions.idHash, idHash));
  },

  /** Restarts the idle timer. */
  async touchSession(db: DbExecutor, idHash: Buffer, at: Date): Promise<void> {
    await db.update(sessions).set({ lastSeenAt: at }).where(eq(sessions.idHash, idHash));
  },

  /**
   * The token with this hash, if not revoked, not expired and its owner (if any) active and not
   * erased, marked used at `now`, with its owner's role; undefined otherwise. One statement.
   */
  useApiToken: async (db: DbExecutor, tokenHash: Buffer, now: Date) =>
    (
      await db.execute<{
        id: string;
        name: string;
        role: Role;
        owner_id: string | null;
        owner_role: Role | null;
      }>(sql`
      UPDATE api_tokens t SET last_used_at = ${now}
       WHERE t.token_hash = ${tokenHash} AND t.revoked_at IS NULL AND t.expires_at > ${now}
         AND (t.owner_id IS NULL OR EXISTS (SELECT 1 FROM users u WHERE u.id = t.owner_id AND NOT u.disabled AND u.erased_at IS NULL))
      RETURNING t.id, t.name, t.role, t.owner_id, (SELECT u.role FROM users u WHERE u.id = t.owner_id) AS owner_role`)
    ).rows[0],
};
