import { and, count, eq, gt, inArray, isNull, sql } from 'drizzle-orm';
import type { DbExecutor } from '../db/scoped.ts';
import {
  alerts,
  apiTokens,
  sessions,
  units,
  userTokens,
  userUnitAssignments,
  users,
  type User,
} from '../db/schema/index.ts';
import type { Role } from './permissions.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A uuid[] literal for a definer function's argument. The service checks the ids first (and
 * answers a bad one with its own error); this check is the repo's own guard, since the literal
 * goes into the statement as text.
 */
function uuidArray(ids: string[]): string {
  for (const id of ids) if (!UUID.test(id)) throw new Error(`not a uuid: ${JSON.stringify(id)}`);
  return `ARRAY[${ids.map((id) => `'${id}'`).join(',')}]::uuid[]`;
}

/**
 * The SQL of the auth feature: sign-in protection (table login_throttle, keyed by the SHA-256 of
 * `account:` or `ip:` and its value; SQL text: the reservation is one atomic upsert with CASE
 * arms that the builder would only obscure), sessions and the API-token lookup (session-service.ts), users, their units and
 * API tokens (user-service.ts). Changes to users, links, assignments and tokens go through the
 * definer functions of migrations 0019 and 0020, which check the transaction's verified scope.
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

  /** Locks the user's row for the rest of the transaction (definer function, migration 0019). */
  async lockUser(tx: DbExecutor, id: string): Promise<void> {
    await tx.execute(sql`SELECT thamani_user_lock(${id})`);
  },

  userById: async (db: DbExecutor, id: string): Promise<User | undefined> =>
    (await db.select().from(users).where(eq(users.id, id)))[0],

  /** Every user, by username. */
  listUsers: (db: DbExecutor): Promise<User[]> => db.select().from(users).orderBy(users.username),

  countUsers: async (db: DbExecutor): Promise<number> =>
    (await db.select({ n: count() }).from(users))[0]?.n ?? 0,

  /** The id of the user with this (lower-cased) username. */
  userIdByUsername: async (db: DbExecutor, username: string) =>
    (await db.select({ id: users.id }).from(users).where(eq(users.username, username)))[0],

  /** A new user (definer function); its id. */
  insertUser: async (
    tx: DbExecutor,
    username: string,
    displayName: string,
    email: string | null,
    role: Role,
  ): Promise<string> =>
    (
      await tx.execute<{ id: string }>(
        sql`SELECT thamani_user_insert(${username}, ${displayName}, ${email}, ${role}) AS id`,
      )
    ).rows[0]!.id,

  /** Sets the given fields of a user (definer function; `set` as a JSON object). */
  async updateUser(tx: DbExecutor, id: string, set: Record<string, unknown>): Promise<void> {
    await tx.execute(sql`SELECT thamani_user_update(${id}, ${JSON.stringify(set)}::jsonb)`);
  },

  /** The session user's own language (definer function; the user is the verified scope's). */
  async setOwnLanguage(tx: DbExecutor, language: string | null): Promise<void> {
    await tx.execute(sql`SELECT thamani_user_set_own_language(${language})`);
  },

  /** Scrubs the account, ends and deletes its sessions, spends its links (migration 0020). */
  async eraseUser(tx: DbExecutor, id: string): Promise<void> {
    await tx.execute(sql`SELECT thamani_user_erase(${id})`);
  },

  /** A setup or reset link; voids the older unused ones of the same user and purpose. */
  async issueUserLink(
    tx: DbExecutor,
    userId: string,
    purpose: 'setup' | 'reset',
    tokenHash: Buffer,
    expiresAt: Date,
  ): Promise<void> {
    await tx.execute(
      sql`SELECT thamani_user_link(${userId}, ${purpose}, ${tokenHash}, ${expiresAt})`,
    );
  },

  /** Who holds a link that is unused and not expired at `now`, without using it up. */
  linkHolder: async (db: DbExecutor, tokenHash: Buffer, now: Date) =>
    (
      await db
        .select({ username: users.username, displayName: users.displayName, email: users.email })
        .from(userTokens)
        .innerJoin(users, eq(users.id, userTokens.userId))
        .where(
          and(
            eq(userTokens.tokenHash, tokenHash),
            isNull(userTokens.usedAt),
            gt(userTokens.expiresAt, now),
          ),
        )
    )[0],

  /**
   * Uses a link (the secret opens the change, migration 0019): spent, password set, sessions
   * ended. Its user and purpose; undefined when the link is not valid.
   */
  completeLink: async (tx: DbExecutor, token: string, passwordHash: string) =>
    (
      await tx.execute<{ user_id: string; purpose: string }>(
        sql`SELECT * FROM thamani_complete_link(${token}, ${passwordHash})`,
      )
    ).rows[0],

  /** Ends every live session of the user at `at`. */
  async revokeUserSessions(tx: DbExecutor, userId: string, at: Date): Promise<void> {
    await tx
      .update(sessions)
      .set({ revokedAt: at })
      .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt)));
  },

  /** The user's sessions, with where they came from (data portability). */
  sessionsOf: (db: DbExecutor, userId: string) =>
    db
      .select({
        createdAt: sessions.createdAt,
        lastSeenAt: sessions.lastSeenAt,
        ip: sessions.ip,
        userAgent: sessions.userAgent,
        revokedAt: sessions.revokedAt,
      })
      .from(sessions)
      .where(eq(sessions.userId, userId)),

  /** The units assigned to the user, unordered. */
  unitIdsOf: (db: DbExecutor, userId: string) =>
    db
      .select({ unitId: userUnitAssignments.unitId })
      .from(userUnitAssignments)
      .where(eq(userUnitAssignments.userId, userId)),

  /** How many of these units exist. */
  countUnits: async (db: DbExecutor, unitIds: string[]): Promise<number> =>
    (await db.select({ n: count() }).from(units).where(inArray(units.id, unitIds)))[0]?.n ?? 0,

  /** Replaces the user's unit assignments (definer function). */
  async setUserUnits(tx: DbExecutor, userId: string, unitIds: string[]): Promise<void> {
    await tx.execute(sql`SELECT thamani_user_set_units(${userId}, ${sql.raw(uuidArray(unitIds))})`);
  },

  /** The alerts acknowledged under any of these actor ids (data portability). */
  alertsAcknowledgedBy: (db: DbExecutor, actorIds: string[]) =>
    db
      .select({
        id: alerts.id,
        ruleId: alerts.ruleId,
        deviceId: alerts.deviceId,
        acknowledgedAt: alerts.acknowledgedAt,
        note: alerts.ackNote,
      })
      .from(alerts)
      .where(inArray(alerts.acknowledgedById, actorIds)),

  /** A new API token (definer function: creator and owner come from the verified scope); its id. */
  insertApiToken: async (
    tx: DbExecutor,
    name: string,
    role: Role,
    tokenHash: Buffer,
    expiresAt: Date,
  ): Promise<string> =>
    (
      await tx.execute<{ id: string }>(
        sql`SELECT thamani_api_token_insert(${name}, ${role}, ${tokenHash}, ${expiresAt}) AS id`,
      )
    ).rows[0]!.id,

  apiTokenById: async (db: DbExecutor, id: string) =>
    (await db.select().from(apiTokens).where(eq(apiTokens.id, id)))[0],

  /** The owner of a token; undefined when there is no such token. */
  apiTokenOwner: async (db: DbExecutor, id: string) =>
    (
      await db.select({ ownerId: apiTokens.ownerId }).from(apiTokens).where(eq(apiTokens.id, id))
    )[0],

  /** Every token, oldest first. */
  listApiTokens: (db: DbExecutor) => db.select().from(apiTokens).orderBy(apiTokens.createdAt),

  /** The user's tokens not revoked yet, with their roles. */
  liveApiTokensOf: (db: DbExecutor, ownerId: string) =>
    db
      .select({ id: apiTokens.id, role: apiTokens.role })
      .from(apiTokens)
      .where(and(eq(apiTokens.ownerId, ownerId), isNull(apiTokens.revokedAt))),

  /** Revokes tokens (definer function); the ids it revoked. */
  revokeApiTokens: async (tx: DbExecutor, ids: string[]): Promise<{ id: string }[]> =>
    (
      await tx.execute<{ id: string }>(
        sql`SELECT thamani_api_tokens_revoke(${sql.raw(uuidArray(ids))}) AS id`,
      )
    ).rows,
};
