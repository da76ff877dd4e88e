import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { holdTestConnection } from '../test/db.ts';
import { createCopyEncoder } from '../ingest/copy-binary.ts';
import { copyInOneWrite } from './pg-copy.ts';

const client = holdTestConnection();

const encode = createCopyEncoder();
const rows = (deviceId: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    deviceId,
    unitId: randomUUID(),
    seq: i,
    ts: new Date(Date.now() - 60_000 + i * 10),
    values: { ph: 7 },
  }));
const count = async (deviceId: string): Promise<number> =>
  (
    await client().query<{ n: number }>(
      `SELECT count(*)::int AS n FROM readings WHERE device_id = $1`,
      [deviceId],
    )
  ).rows[0]!.n;

describe('COPY in one write', () => {
  it('stores the rows and runs the statements after it, as one transaction', async () => {
    const { columns, data } = encode(rows('bd-pc-1', 500));
    await copyInOneWrite(
      client(),
      `COPY readings (ts, device_id, unit_id, seq, ${columns.join(', ')}) FROM STDIN (FORMAT binary); CREATE TEMP TABLE pc_marker AS SELECT 1 AS x; SELECT 2 AS ignored`,
      data,
    );
    expect(await count('bd-pc-1')).toBe(500);
    expect((await client().query('SELECT x FROM pc_marker')).rows).toEqual([{ x: 1 }]);
  });

  it('fails cleanly when the statement fails before copy-in (the data is dropped), and the connection goes on', async () => {
    const { data } = encode(rows('bd-pc-2', 10));
    await expect(
      copyInOneWrite(client(), `COPY no_such_table FROM STDIN (FORMAT binary)`, data),
    ).rejects.toThrow(/no_such_table/);
    expect((await client().query('SELECT 41 + 1 AS n')).rows).toEqual([{ n: 42 }]);
  });

  it('stores nothing when the data is bad or a later statement fails, and the connection goes on', async () => {
    const { columns, data } = encode(rows('bd-pc-3', 10));
    const copy = `COPY readings (ts, device_id, unit_id, seq, ${columns.join(', ')}) FROM STDIN (FORMAT binary)`;
    await expect(
      copyInOneWrite(client(), copy, data.subarray(0, data.length - 30)),
    ).rejects.toThrow();
    await expect(copyInOneWrite(client(), `${copy}; SELECT 1 / 0`, data)).rejects.toThrow(
      /division by zero/,
    );
    expect(await count('bd-pc-3')).toBe(0);
    await copyInOneWrite(client(), copy, data);
    expect(await count('bd-pc-3')).toBe(10);
  });
});
