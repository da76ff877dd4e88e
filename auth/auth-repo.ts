import { sql } from 'drizzle-orm';
import type { DbExecutor } from '../db/scoped.ts';

/**
 * The SQL of sign-in protection (table login_throttle, keyed by the SHA-256 of `account:` or
 * `ip:` and its value). SQL text through drizzle's `sql`: the reservation is one atomic upsert
 * with CASE arms that the builder would only obscure.
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
};
