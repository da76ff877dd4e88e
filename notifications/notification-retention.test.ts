import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, testLogger, type TestDatabase } from '../test/db.ts';
import { notificationRepo } from './notification-repo.ts';
import { startNotificationRetention } from './notification-retention.ts';

/**
 * The notification outbox holds people's addresses and the texts sent to them: what was sent or
 * given up goes after NOTIFY_RETENTION_DAYS, what is still to be sent stays however old. Over
 * generated ages, states and retentions.
 */
const DAY = 86_400_000;
let t: TestDatabase;
let userId: string;
let n = 0;

beforeAll(async () => {
  t = await createTestDatabase();
  userId = (
    await t.database.pool.query<{ id: string }>(
      `INSERT INTO users (username, display_name, email, role) VALUES ('kept', 'Kept', 'kept@example.org', 'kitchen_manager') RETURNING id`,
    )
  ).rows[0]!.id;
}, 120_000);

type State = 'pending' | 'delivered' | 'failed';

async function insert(state: State, createdAgoMs: number, endedAgoMs: number): Promise<string> {
  n += 1;
  const now = Date.now();
  const ended = new Date(now - endedAgoMs);
  const { rows } = await t.database.pool.query<{ id: string }>(
    `INSERT INTO notification_outbox (idempotency_key, user_id, channel, kind, event, address, body, created_at, delivered_at, failed_at)
     VALUES ($1, $2, 'email', 'alert', 'opened', 'kept@example.org', 'pH high', $3, $4, $5) RETURNING id::text`,
    [
      `retention-${n}`,
      userId,
      new Date(now - createdAgoMs),
      state === 'delivered' ? ended : null,
      state === 'failed' ? ended : null,
    ],
  );
  return rows[0]!.id;
}

describe('notification retention', () => {
  it('removes exactly what was sent or given up before the retention, nothing still to be sent', async () => {
    const pool = t.database.pool;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 400 }),
        fc.array(
          fc
            .record({
              state: fc.constantFrom<State>('pending', 'delivered', 'failed'),
              endedAgoMs: fc.integer({ min: 0, max: 500 * DAY }),
              before: fc.integer({ min: 0, max: 30 * DAY }),
            })
            .map((r) => ({ ...r, createdAgoMs: r.endedAgoMs + r.before })),
          { maxLength: 12 },
        ),
        async (retentionDays, rows) => {
          // A minute's margin either side of the cutoff: the ages are taken at insert.
          fc.pre(rows.every((r) => Math.abs(r.endedAgoMs - retentionDays * DAY) > 60_000));
          await pool.query(`DELETE FROM notification_outbox`);
          const ids: string[] = [];
          for (const r of rows) ids.push(await insert(r.state, r.createdAgoMs, r.endedAgoMs));
          const cutoff = new Date(Date.now() - retentionDays * DAY);
          const expectedGone = rows
            .map((r, i) => ({ r, id: ids[i]! }))
            .filter(
              ({ r }) => r.state !== 'pending' && Date.now() - r.endedAgoMs < cutoff.getTime(),
            );
          const removed = await notificationRepo.pruneEnded(pool, cutoff);
          expect(removed).toBe(expectedGone.length);
          const left = (
            await pool.query<{ id: string }>(
              `SELECT id::text FROM notification_outbox ORDER BY notification_outbox.id`,
            )
          ).rows.map((r) => r.id);
          const gone = new Set(expectedGone.map((g) => g.id));
          expect(left).toEqual(ids.filter((id) => !gone.has(id)));
        },
      ),
      { numRuns: 30 },
    );
  });

  it('runs at start with the configured retention, on every node without harm', async () => {
    const pool = t.database.pool;
    await pool.query(`DELETE FROM notification_outbox`);
    const old = await insert('delivered', 32 * DAY, 31 * DAY);
    const young = await insert('failed', 30 * DAY, 29 * DAY);
    const waiting = await insert('pending', 300 * DAY, 300 * DAY);
    const stops = [1, 2].map(() =>
      startNotificationRetention({
        pool,
        retentionDays: 30,
        logger: testLogger,
        intervalMs: 60_000,
      }),
    );
    try {
      await expect
        .poll(async () =>
          (
            await pool.query<{ id: string }>(
              `SELECT id::text FROM notification_outbox ORDER BY notification_outbox.id`,
            )
          ).rows.map((r) => r.id),
        )
        .toEqual([young, waiting]);
      expect(old).not.toBe(young);
    } finally {
      for (const stop of stops) stop();
    }
  });
});
