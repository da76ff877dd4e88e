import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, testLogger, type TestDatabase } from '../test/db.ts';
import { waitFor } from '../test/wait.ts';
import { createBatchWriter, type RowIn } from './batch-writer.ts';

let t: TestDatabase;
const unitId = randomUUID();
beforeAll(async () => {
  t = await createTestDatabase();
});

const row = (deviceId: string, seq: number, ts: Date, suspectSeq = false): RowIn => ({ deviceId, unitId, seq, ts, values: { temperature_c: 30 + seq / 10, battery_v: 3.9 }, suspectSeq });

describe('batch writer', () => {
  it('writes readings whose seq advanced with COPY, and stores each once', async () => {
    const w = createBatchWriter({ pool: t.database.pool, logger: testLogger, maxRows: 1000, maxWaitMs: 1 });
    const base = Date.now() - 60_000;
    const rows = Array.from({ length: 200 }, (_, i) => row(`bd-bw-${i % 4}`, i, new Date(base + i * 100)));
    const result = await w.write(rows, []);
    expect(result).toEqual({ stored: 200, duplicates: 0, regressions: 0, quarantineIds: [] });
    const { rows: stored } = await t.database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM readings WHERE device_id LIKE 'bd-bw-%'`);
    expect(stored[0]!.n).toBe(200);
    // The latest state went in with them: the newest value of each metric per device.
    const { rows: latest } = await t.database.pool.query<{ device_id: string; metric: string; value: number; ts: Date }>(`SELECT device_id, metric, value, ts FROM latest_readings WHERE device_id = 'bd-bw-3' ORDER BY metric`);
    const newest = rows.filter((r) => r.deviceId === 'bd-bw-3').at(-1)!;
    expect(latest.map((l) => [l.metric, l.value, l.ts.getTime()])).toEqual([
      ['battery_v', 3.9, newest.ts.getTime()],
      ['temperature_c', newest.values.temperature_c, newest.ts.getTime()],
    ]);
  });

  it('stores readings and their latest state together or not at all', async () => {
    // Make the latest-state half of the one-round-trip commit fail for one device.
    await t.database.pool.query(`CREATE FUNCTION bw_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.device_id = 'bd-bw-atomic' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`);
    await t.database.pool.query(`CREATE TRIGGER bw_refuse BEFORE INSERT ON latest_readings FOR EACH ROW EXECUTE FUNCTION bw_refuse()`);
    try {
      const w = createBatchWriter({ pool: t.database.pool, logger: testLogger, maxRows: 1000, maxWaitMs: 1 });
      await expect(w.write([row('bd-bw-atomic', 1, new Date(Date.now() - 5_000))], [], 800)).rejects.toThrow(/deadline/);
      w.stop();
      const { rows } = await t.database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM readings WHERE device_id = 'bd-bw-atomic'`);
      expect(rows[0]!.n).toBe(0);
    } finally {
      await t.database.pool.query(`DROP TRIGGER bw_refuse ON latest_readings; DROP FUNCTION bw_refuse()`);
    }
  });

  it('falls back to row by row when a new seq reuses a stored instant: that one is a duplicate, the rest are stored', async () => {
    const stored: RowIn[] = [];
    const w = createBatchWriter({ pool: t.database.pool, logger: testLogger, maxRows: 1000, maxWaitMs: 1, onStored: (r) => stored.push(...r) });
    const ts = new Date(Date.now() - 30_000);
    await w.write([row('bd-bw-dup', 1, ts)], []);
    stored.length = 0;
    // seq 2 (advanced, so not suspect) but the same instant as seq 1, next to two new readings.
    const result = await w.write([row('bd-bw-dup', 2, ts), row('bd-bw-dup', 3, new Date(ts.getTime() + 1000)), row('bd-bw-new', 1, ts)], []);
    expect(result).toMatchObject({ stored: 2, duplicates: 1, regressions: 0 });
    expect(stored.map((r) => `${r.deviceId}:${r.seq}`).sort()).toEqual(['bd-bw-dup:3', 'bd-bw-new:1']);
    const { rows } = await t.database.pool.query<{ seq: number }>(`SELECT seq::int FROM readings WHERE device_id = 'bd-bw-dup' ORDER BY ts`);
    expect(rows.map((r) => r.seq)).toEqual([1, 3]);
  });

  it('takes a re-send in the same commit as its original for a duplicate: stored once, told apart from a regression', async () => {
    const stored: RowIn[] = [];
    const w = createBatchWriter({ pool: t.database.pool, logger: testLogger, maxRows: 1000, maxWaitMs: 50, onStored: (r) => stored.push(...r) });
    const ts = new Date(Date.now() - 20_000);
    // Queued together (one commit): the original, its re-send (seq not advanced), and a real
    // regression (seq not advanced, an instant never stored).
    const [original, resend, regressed] = await Promise.all([
      w.write([row('bd-bw-same', 7, ts)], []),
      w.write([row('bd-bw-same', 7, ts, true)], []),
      w.write([row('bd-bw-same', 6, new Date(ts.getTime() - 1000), true)], []),
    ]);
    w.stop();
    expect(original).toMatchObject({ stored: 1, duplicates: 0, regressions: 0 });
    expect(resend).toMatchObject({ stored: 0, duplicates: 1, regressions: 0 });
    expect(regressed).toMatchObject({ stored: 0, duplicates: 0, regressions: 1 });
    expect(stored.map((r) => r.seq)).toEqual([7]);
    const { rows } = await t.database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM readings WHERE device_id = 'bd-bw-same'`);
    expect(rows[0]!.n).toBe(1);
  });

  it('takes a re-send for a duplicate when the commit of its original fails while it waits, and the original is retried', async () => {
    const count = async (sql: string): Promise<number> => (await t.database.pool.query<{ n: number }>(sql)).rows[0]!.n;
    const waitingInserts = (): Promise<number> => count(`SELECT count(*)::int AS n FROM pg_locks WHERE relation = 'readings'::regclass AND NOT granted`);
    const until = (what: string, f: () => Promise<boolean>): Promise<boolean> => waitFor(what, f);
    // One job per commit: the original and its re-send go to separate, concurrent commits.
    const w = createBatchWriter({ pool: t.database.pool, logger: testLogger, maxRows: 1, maxWaitMs: 0 });
    const ts = new Date(Date.now() - 10_000);
    const blocker = await t.database.pool.connect();
    try {
      // The original's commit stays open: its COPY waits on the lock.
      await blocker.query(`BEGIN; LOCK TABLE readings IN SHARE MODE`);
      const original = w.write([row('bd-bw-fail', 3, ts)], []);
      await until('the original waiting on the lock', async () => (await waitingInserts()) === 1);
      const resend = w.write([row('bd-bw-fail', 3, ts, true)], []);
      await new Promise((r) => setTimeout(r, 100));
      // The original's connection dies (a database fault) while the re-send waits for it.
      const killed = await count(`SELECT count(pg_terminate_backend(l.pid))::int AS n FROM pg_locks l WHERE l.relation = 'readings'::regclass AND NOT l.granted`);
      expect(killed).toBe(1);
      // Its retry waits on the lock again; then the lock goes.
      await until('the retry waiting on the lock', async () => (await waitingInserts()) === 1);
      await blocker.query('ROLLBACK');
      expect(await original).toMatchObject({ stored: 1, duplicates: 0, regressions: 0 });
      expect(await resend).toMatchObject({ stored: 0, duplicates: 1, regressions: 0 });
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
      blocker.release();
      w.stop();
    }
    expect(await count(`SELECT count(*)::int AS n FROM readings WHERE device_id = 'bd-bw-fail'`)).toBe(1);
    expect(await count(`SELECT count(*)::int AS n FROM quarantine WHERE device_id = 'bd-bw-fail'`)).toBe(0);
  });
});
