import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { rollback, withTransaction } from './transaction.ts';

/** db/transaction.ts: what fn wrote is kept exactly when it resolves with a value. */
let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
  await t.database.pool.query(`CREATE TABLE tx_probe (n int PRIMARY KEY)`);
});

const kept = async (n: number) =>
  (await t.database.pool.query(`SELECT 1 FROM tx_probe WHERE n = $1`, [n])).rows.length === 1;

describe('withTransaction', () => {
  it('commits what fn wrote when it resolves, and answers its value', async () => {
    expect(
      await withTransaction(
        t.database.pool,
        async (q) => (await q.query(`INSERT INTO tx_probe VALUES (1) RETURNING n`)).rows.length,
      ),
    ).toBe(1);
    expect(await kept(1)).toBe(true);
  });

  it('rolls back when fn answers `rollback`, and says so', async () => {
    expect(
      await withTransaction(
        t.database.pool,
        async (q) => (await q.query(`INSERT INTO tx_probe VALUES (2)`), rollback),
      ),
    ).toBe(rollback);
    expect(await kept(2)).toBe(false);
  });

  it('rolls back and rethrows when fn throws, and gives the connection back in a usable state', async () => {
    const boom = new Error('boom');
    await expect(
      withTransaction(
        t.database.pool,
        async (q) => (await q.query(`INSERT INTO tx_probe VALUES (3)`), Promise.reject(boom)),
      ),
    ).rejects.toBe(boom);
    // A statement that fails inside: the transaction is aborted, and still nothing is kept.
    await expect(
      withTransaction(
        t.database.pool,
        async (q) => (
          await q.query(`INSERT INTO tx_probe VALUES (4)`),
          await q.query(`INSERT INTO tx_probe VALUES (1)`)
        ),
      ),
    ).rejects.toMatchObject({ code: '23505' });
    expect([await kept(3), await kept(4)]).toEqual([false, false]);
    // Every connection is back in the pool and none is left inside a transaction.
    for (let i = 0; i < 12; i++)
      expect(
        await withTransaction(
          t.database.pool,
          async (q) =>
            (await q.query<{ s: string }>(`SELECT pg_current_xact_id_if_assigned() IS NULL AS s`))
              .rows[0]!.s,
        ),
      ).toBe(true);
    expect(t.database.pool.waitingCount).toBe(0);
  });
});
