import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, testLogger, type TestDatabase } from '../test/db.ts';
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
    const result = await w.write(rows, []).promise;
    expect(result).toEqual({ stored: 200, duplicates: 0, regressions: 0, quarantineIds: [] });
    const { rows: stored } = await t.database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM readings WHERE device_id LIKE 'bd-bw-%'`);
    expect(stored[0]!.n).toBe(200);
  });

  it('falls back to row by row when a new seq reuses a stored instant: that one is a duplicate, the rest are stored', async () => {
    const stored: RowIn[] = [];
    const w = createBatchWriter({ pool: t.database.pool, logger: testLogger, maxRows: 1000, maxWaitMs: 1, onStored: (r) => stored.push(...r) });
    const ts = new Date(Date.now() - 30_000);
    await w.write([row('bd-bw-dup', 1, ts)], []).promise;
    stored.length = 0;
    // seq 2 (advanced, so not suspect) but the same instant as seq 1, next to two new readings.
    const result = await w.write([row('bd-bw-dup', 2, ts), row('bd-bw-dup', 3, new Date(ts.getTime() + 1000)), row('bd-bw-new', 1, ts)], []).promise;
    expect(result).toMatchObject({ stored: 2, duplicates: 1, regressions: 0 });
    expect(stored.map((r) => `${r.deviceId}:${r.seq}`).sort()).toEqual(['bd-bw-dup:3', 'bd-bw-new:1']);
    const { rows } = await t.database.pool.query<{ seq: number }>(`SELECT seq::int FROM readings WHERE device_id = 'bd-bw-dup' ORDER BY ts`);
    expect(rows.map((r) => r.seq)).toEqual([1, 3]);
  });
});
