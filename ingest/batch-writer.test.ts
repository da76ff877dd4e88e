import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, testLogger, type TestDatabase } from '../test/db.ts';
import { waitFor } from '../test/wait.ts';
import { createBatchWriter, type RowIn } from './batch-writer.ts';
import type { Expect } from './seq-fns.ts';

let t: TestDatabase;
const unitId = randomUUID();
beforeAll(async () => {
  t = await createTestDatabase();
});

const row = (deviceId: string, seq: number, ts: Date, expect: Expect = 'new'): RowIn => ({
  deviceId,
  unitId,
  seq,
  ts,
  values: { temperature_c: 30 + seq / 10, battery_v: 3.9 },
  expect,
});

describe('batch writer', () => {
  it('writes readings whose seq advanced with COPY, and stores each once', async () => {
    const w = createBatchWriter({
      pool: t.database.pool,
      logger: testLogger,
      maxRows: 1000,
      maxWaitMs: 1,
    });
    const base = Date.now() - 60_000;
    const rows = Array.from({ length: 200 }, (_, i) =>
      row(`bd-bw-${i % 4}`, i, new Date(base + i * 100)),
    );
    const result = await w.write(rows, []);
    expect(result).toEqual({
      stored: 200,
      duplicates: 0,
      regressions: 0,
      conflicts: 0,
      quarantineIds: [],
      refused: [],
    });
    const { rows: stored } = await t.database.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM readings WHERE device_id LIKE 'bd-bw-%'`,
    );
    expect(stored[0]!.n).toBe(200);
    // The latest state went in with them: the newest value of each metric per device.
    const { rows: latest } = await t.database.pool.query<{
      device_id: string;
      metric: string;
      value: number;
      ts: Date;
    }>(
      `SELECT device_id, metric, value, ts FROM latest_readings WHERE device_id = 'bd-bw-3' ORDER BY metric`,
    );
    const newest = rows.filter((r) => r.deviceId === 'bd-bw-3').at(-1)!;
    expect(latest.map((l) => [l.metric, l.value, l.ts.getTime()])).toEqual([
      ['battery_v', 3.9, newest.ts.getTime()],
      ['temperature_c', newest.values.temperature_c, newest.ts.getTime()],
    ]);
  });

  it('stores readings and their latest state together or not at all', async () => {
    // Make the latest-state half of the one-round-trip commit fail for one device.
    await t.database.pool.query(
      `CREATE FUNCTION bw_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.device_id = 'bd-bw-atomic' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`,
    );
    await t.database.pool.query(
      `CREATE TRIGGER bw_refuse BEFORE INSERT ON latest_readings FOR EACH ROW EXECUTE FUNCTION bw_refuse()`,
    );
    try {
      const w = createBatchWriter({
        pool: t.database.pool,
        logger: testLogger,
        maxRows: 1000,
        maxWaitMs: 1,
      });
      await expect(
        w.write([row('bd-bw-atomic', 1, new Date(Date.now() - 5_000))], [], 800),
      ).rejects.toThrow(/deadline/);
      w.stop();
      const { rows } = await t.database.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM readings WHERE device_id = 'bd-bw-atomic'`,
      );
      expect(rows[0]!.n).toBe(0);
    } finally {
      await t.database.pool.query(
        `DROP TRIGGER bw_refuse ON latest_readings; DROP FUNCTION bw_refuse()`,
      );
    }
  });

  it('quarantines a different reading at a stored instant as TS_CONFLICT, even when the COPY meets it unforeseen, and stores the rest', async () => {
    const stored: RowIn[] = [];
    const commits: { rows: number; conflicts: number }[] = [];
    const w = createBatchWriter({
      pool: t.database.pool,
      logger: testLogger,
      maxRows: 1000,
      maxWaitMs: 1,
      onStored: (r) => stored.push(...r),
      onCommit: (c) => commits.push(c),
    });
    const ts = new Date(Date.now() - 30_000);
    await w.write([row('bd-bw-dup', 1, ts)], []);
    stored.length = 0;
    commits.length = 0;
    // seq 2 claimed new (as a replay by another writer could make it look) but at seq 1's instant.
    const result = await w.write(
      [
        row('bd-bw-dup', 2, ts),
        row('bd-bw-dup', 3, new Date(ts.getTime() + 1000)),
        row('bd-bw-new', 1, ts),
      ],
      [],
    );
    w.stop();
    expect(result).toMatchObject({ stored: 2, duplicates: 0, regressions: 0, conflicts: 1 });
    expect(result.refused).toEqual([expect.objectContaining({ code: 'TS_CONFLICT', seq: 2 })]);
    expect(result.quarantineIds).toHaveLength(1);
    expect(commits).toEqual([expect.objectContaining({ rows: 2, conflicts: 1 })]);
    expect(stored.map((r) => `${r.deviceId}:${r.seq}`).sort()).toEqual([
      'bd-bw-dup:3',
      'bd-bw-new:1',
    ]);
    // The same inside the explicit transaction (a job with a quarantine record of its own).
    const own = {
      deviceId: 'bd-bw-dup',
      unitId,
      receivedAt: new Date(),
      topic: 'devices/bd-bw-dup/telemetry',
      payload: Buffer.from('{'),
      payloadSize: 1,
      batchIndex: undefined,
      seq: undefined,
      reasons: [{ field: '', code: 'MALFORMED_JSON' as const, message: 'test' }],
    };
    const w2 = createBatchWriter({
      pool: t.database.pool,
      logger: testLogger,
      maxRows: 1000,
      maxWaitMs: 1,
    });
    const again = await w2.write(
      [row('bd-bw-dup', 9, ts), row('bd-bw-dup', 10, new Date(ts.getTime() + 2000))],
      [own],
    );
    w2.stop();
    expect(again).toMatchObject({
      stored: 1,
      conflicts: 1,
      refused: [expect.objectContaining({ code: 'TS_CONFLICT', seq: 9 })],
    });
    expect(again.quarantineIds).toHaveLength(2);
    const q = await t.database.pool.query<{ seq: number; reasons: { code: string }[] }>(
      `SELECT seq::int, reasons FROM quarantine WHERE device_id = 'bd-bw-dup' ORDER BY id`,
    );
    expect(q.rows.map((r) => [r.seq, r.reasons[0]!.code])).toEqual([
      [2, 'TS_CONFLICT'],
      [null, 'MALFORMED_JSON'],
      [9, 'TS_CONFLICT'],
    ]);
    const { rows } = await t.database.pool.query<{ seq: number }>(
      `SELECT seq::int FROM readings WHERE device_id = 'bd-bw-dup' ORDER BY ts`,
    );
    expect(rows.map((r) => r.seq)).toEqual([1, 3, 10]);
  });

  it('settles readings at the same instant in memory within a commit: a re-send is a duplicate, a new seq a conflict, a seq gone back for a new instant a regression', async () => {
    const stored: RowIn[] = [];
    const w = createBatchWriter({
      pool: t.database.pool,
      logger: testLogger,
      maxRows: 1000,
      maxWaitMs: 50,
      onStored: (r) => stored.push(...r),
    });
    const ts = new Date(Date.now() - 20_000);
    // Queued together (one commit): the original, its re-send, another reading at the same
    // instant, and a real regression (seq not advanced, an instant never stored).
    const [original, resend, other, regressed] = await Promise.all([
      w.write([row('bd-bw-same', 7, ts)], []),
      w.write([row('bd-bw-same', 7, ts, 'any')], []),
      w.write([row('bd-bw-same', 8, ts, 'any')], []),
      w.write([row('bd-bw-same', 6, new Date(ts.getTime() + 1000), 'stored')], []),
    ]);
    w.stop();
    expect(original).toMatchObject({ stored: 1, duplicates: 0, regressions: 0, conflicts: 0 });
    expect(resend).toMatchObject({ stored: 0, duplicates: 1, regressions: 0, conflicts: 0 });
    expect(other).toMatchObject({ stored: 0, duplicates: 0, regressions: 0, conflicts: 1 });
    expect(regressed).toMatchObject({ stored: 0, duplicates: 0, regressions: 1, conflicts: 0 });
    expect(stored.map((r) => r.seq)).toEqual([7]);
    const { rows } = await t.database.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM readings WHERE device_id = 'bd-bw-same'`,
    );
    expect(rows[0]!.n).toBe(1);
  });

  it('stores one of a reading and its re-send when the commit of the original fails while the re-send waits, and acknowledges both', async () => {
    const count = async (sql: string): Promise<number> =>
      (await t.database.pool.query<{ n: number }>(sql)).rows[0]!.n;
    const waitingInserts = (): Promise<number> =>
      count(
        `SELECT count(*)::int AS n FROM pg_locks WHERE database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND relation = 'readings'::regclass AND NOT granted`,
      );
    const until = (what: string, f: () => Promise<boolean>): Promise<boolean> => waitFor(what, f);
    // One job per commit: the original and its re-send go to separate, concurrent commits.
    const w = createBatchWriter({
      pool: t.database.pool,
      logger: testLogger,
      maxRows: 1,
      maxWaitMs: 0,
    });
    const ts = new Date(Date.now() - 10_000);
    const blocker = await t.database.pool.connect();
    try {
      // The original's commit stays open: its COPY waits on the lock.
      await blocker.query(`BEGIN; LOCK TABLE readings IN SHARE MODE`);
      const original = w.write([row('bd-bw-fail', 3, ts)], []);
      await until('the original waiting on the lock', async () => (await waitingInserts()) === 1);
      const resend = w.write([row('bd-bw-fail', 3, ts, 'any')], []);
      // Its commit under way: it waits for the original's, which began before it.
      await waitFor(
        'the re-send’s commit under way',
        () => w.pending(),
        (n) => n === 0,
      );
      // The original's connection dies (a database fault) while the re-send waits for it.
      const killed = await count(
        `SELECT count(pg_terminate_backend(l.pid))::int AS n FROM pg_locks l WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND l.relation = 'readings'::regclass AND NOT l.granted`,
      );
      expect(killed).toBe(1);
      // The re-send's commit (no longer waiting for a commit that is over) and the original's
      // retry queue on the lock, in either order; once one does, the lock goes.
      await until('a commit waiting on the lock again', async () => (await waitingInserts()) >= 1);
      await blocker.query('ROLLBACK');
      // Whichever commits first stores it (the re-send no longer waits for a commit that is
      // over); the other is its duplicate. Both are acknowledged, nothing is quarantined.
      const outcomes = [await original, await resend];
      expect(outcomes.map((o) => o.stored + o.duplicates)).toEqual([1, 1]);
      expect(outcomes.reduce((n, o) => n + o.stored, 0)).toBe(1);
      expect(outcomes.every((o) => o.regressions + o.conflicts === 0)).toBe(true);
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
      blocker.release();
      w.stop();
    }
    expect(
      await count(`SELECT count(*)::int AS n FROM readings WHERE device_id = 'bd-bw-fail'`),
    ).toBe(1);
    expect(
      await count(`SELECT count(*)::int AS n FROM quarantine WHERE device_id = 'bd-bw-fail'`),
    ).toBe(0);
  });

  it('judges a re-send only against committed readings: a reading another commit meant to store but did not is no conflict', async () => {
    // Another writer (here a plain transaction, as a replay by the owner would be) holds seq 101
    // at t0, uncommitted. Commit A plans seq 100 at t0 (it sees no 101) and its COPY waits on
    // that row. Commit B carries a re-send of 101 at t0 while A is in flight. A then meets the
    // unique violation and stores nothing: B must not have been told "conflict with seq 100".
    const device = `bd-bw-phantom-${randomUUID().slice(0, 8)}`;
    const ts = new Date(Date.now() - 20_000);
    const w = createBatchWriter({
      pool: t.database.pool,
      logger: testLogger,
      maxRows: 1,
      maxWaitMs: 0,
    });
    const lockWaits = async (): Promise<number> =>
      (
        await t.database.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        )
      ).rows[0]!.n;
    const other = await t.database.pool.connect();
    try {
      const r101 = row(device, 101, ts, 'any');
      await other.query('BEGIN');
      await other.query(
        `INSERT INTO readings (ts, device_id, unit_id, seq, temperature_c, battery_v) VALUES ($1, $2, $3, 101, $4, $5)`,
        [ts, device, unitId, r101.values.temperature_c, r101.values.battery_v],
      );
      const a = w.write([row(device, 100, ts, 'any')], []);
      await waitFor('commit A waiting on the other writer’s row', lockWaits, (n) => n === 1);
      const b = w.write([r101], []);
      await waitFor(
        'commit B under way',
        () => w.pending(),
        (n) => n === 0,
      );
      await other.query('COMMIT');
      expect(await a).toMatchObject({ stored: 0, duplicates: 0, conflicts: 1 });
      expect(await b).toMatchObject({ stored: 0, duplicates: 1, conflicts: 0, refused: [] });
    } finally {
      await other.query('ROLLBACK').catch(() => undefined);
      other.release();
      w.stop();
    }
    const q = await t.database.pool.query<{ seq: string }>(
      `SELECT seq FROM quarantine WHERE device_id = $1`,
      [device],
    );
    expect(q.rows.map((r) => Number(r.seq))).toEqual([100]);
  });
});
