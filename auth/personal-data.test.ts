import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApiHarness, createUserWithPassword, type ApiHarness } from '../test/api-harness.ts';
import { testLogger } from '../test/db.ts';
import { pruneSignInMetadata } from './personal-data-repo.ts';
import { startSignInMetadataRetention } from './personal-data-retention.ts';

/**
 * Sign-in metadata has a retention (SIGNIN_METADATA_RETENTION_DAYS): request metadata beside
 * the audit log and ended sessions older than it go, younger ones stay; the daily job runs it
 * at start. Over generated ages and retentions, not one example.
 */
let h: ApiHarness;
const DAY = 86_400_000;
beforeAll(async () => {
  h = await createApiHarness();
}, 120_000);

describe('sign-in metadata retention', () => {
  it('removes exactly the request metadata and ended sessions older than the retention, whatever the ages', async () => {
    const { user } = await createUserWithPassword(h, {
      username: 'retention-user',
      role: 'collector',
    });
    const pool = h.t.database.pool;
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 400 }),
        fc.array(
          fc.record({ ageMs: fc.integer({ min: 0, max: 500 * DAY }), ended: fc.boolean() }),
          { minLength: 1, maxLength: 12 },
        ),
        async (retentionDays, rows) => {
          await pool.query(`DELETE FROM audit_request_meta`);
          await pool.query(`DELETE FROM sessions`);
          const now = new Date();
          for (const r of rows) {
            n += 1;
            const at = new Date(now.getTime() - r.ageMs);
            await pool.query(
              `INSERT INTO audit_request_meta (audit_id, at, ip, user_agent) VALUES ($1, $2, '100.64.0.1', 'ua')`,
              [1_000_000 + n, at],
            );
            // A session ends (revoked or expired) some time after it was last seen; a live one is recent by nature.
            await pool.query(
              `INSERT INTO sessions (id_hash, user_id, csrf_token, ip, user_agent, created_at, last_seen_at, expires_at, revoked_at) VALUES (decode(md5($1::text), 'hex'), $2, 'x', '100.64.0.1', 'ua', $3, $3, $4, $5)`,
              [
                `s${n}`,
                user.id,
                at,
                r.ended ? new Date(at.getTime() + 3_600_000) : new Date(now.getTime() + 3_600_000),
                r.ended ? at : null,
              ],
            );
          }
          const cutoff = new Date(now.getTime() - retentionDays * DAY);
          const removed = await pruneSignInMetadata(h.t.database.db, cutoff, now);
          const old = rows.filter((r) => r.ageMs > retentionDays * DAY);
          expect(removed.requestMeta).toBe(old.length);
          const left = (await pool.query<{ at: Date }>(`SELECT at FROM audit_request_meta`)).rows;
          expect(left.every((r) => r.at.getTime() >= cutoff.getTime())).toBe(true);
          expect(left).toHaveLength(rows.length - old.length);
          // Ended and older than the retention: gone. Live ones stay, however old their last sight.
          const sessionsLeft = (
            await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM sessions`)
          ).rows[0]!.n;
          expect(sessionsLeft).toBe(rows.length - old.filter((r) => r.ended).length);
          expect(removed.sessions).toBe(old.filter((r) => r.ended).length);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('runs at start and on a schedule, as the table owner, with the configured retention', async () => {
    const pool = h.t.database.pool;
    await pool.query(`DELETE FROM audit_request_meta`);
    await pool.query(
      `INSERT INTO audit_request_meta (audit_id, at, ip) VALUES (2000001, now() - interval '31 days', '100.64.0.2'), (2000002, now() - interval '29 days', '100.64.0.3')`,
    );
    const stop = startSignInMetadataRetention({
      db: h.t.database.db,
      retentionDays: 30,
      logger: testLogger,
      intervalMs: 60_000,
    });
    try {
      await expect
        .poll(
          async () =>
            (
              await pool.query<{ ip: string }>(
                `SELECT host(ip) AS ip FROM audit_request_meta ORDER BY audit_id`,
              )
            ).rows.map((r) => r.ip),
          { timeout: 30_000 },
        )
        .toEqual(['100.64.0.3']);
    } finally {
      stop();
    }
  });
});
