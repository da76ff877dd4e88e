import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { holdTestConnection } from '../test/db.ts';
import {
  CopyOutFormatError,
  copyOutBinary,
  createBinaryCopyParser,
  type BinaryRowView,
} from './pg-copy-out.ts';

/** The binary COPY format written out by hand from PostgreSQL's documentation (not our parser). */
function encodeCopy(rows: (Buffer | null)[][], extension: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')];
  const head = Buffer.alloc(8);
  head.writeUInt32BE(0, 0);
  head.writeUInt32BE(extension.length, 4);
  parts.push(head, extension);
  for (const row of rows) {
    const n = Buffer.alloc(2);
    n.writeInt16BE(row.length);
    parts.push(n);
    for (const f of row) {
      const len = Buffer.alloc(4);
      len.writeInt32BE(f === null ? -1 : f.length);
      parts.push(len);
      if (f) parts.push(f);
    }
  }
  parts.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(parts);
}

const copyFields = (v: BinaryRowView, fields: number) =>
  Array.from({ length: fields }, (_, i) =>
    v.length[i]! < 0 ? null : Buffer.from(v.buf.subarray(v.start[i], v.start[i]! + v.length[i]!)),
  );

describe('the binary COPY parser', () => {
  it('gives back every row exactly, wherever the stream is cut', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }).chain((fields) =>
          fc.record({
            fields: fc.constant(fields),
            rows: fc.array(
              fc.array(fc.option(fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a))), {
                minLength: fields,
                maxLength: fields,
              }),
              { maxLength: 30 },
            ),
            extension: fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a)),
            cuts: fc.array(fc.nat(), { maxLength: 20 }),
          }),
        ),
        ({ fields, rows, extension, cuts }) => {
          const stream = encodeCopy(rows, extension);
          const at = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
          const got: (Buffer | null)[][] = [];
          const parser = createBinaryCopyParser(fields, (v) => got.push(copyFields(v, fields)));
          let from = 0;
          for (const to of [...at, stream.length]) {
            parser.push(stream.subarray(from, to));
            from = to;
          }
          parser.end();
          expect(got).toEqual(rows);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses a stream that is not binary COPY, a row of the wrong width, or one cut short', () => {
    const ok = encodeCopy([[Buffer.from('a'), null]], Buffer.alloc(0));
    expect(() =>
      createBinaryCopyParser(2, () => {}).push(
        Buffer.from('PGCOPY\nX\r\n\0' + '\0'.repeat(8), 'latin1'),
      ),
    ).toThrow(CopyOutFormatError);
    expect(() => createBinaryCopyParser(3, () => {}).push(ok)).toThrow(/2 fields, 3 expected/);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: ok.length - 1 }), (cut) => {
        const parser = createBinaryCopyParser(2, () => {});
        parser.push(ok.subarray(0, cut));
        expect(() => parser.end()).toThrow(CopyOutFormatError);
      }),
    );
  });
});

describe('COPY … TO STDOUT (FORMAT binary) from PostgreSQL', () => {
  const client = holdTestConnection();

  const decode = (v: BinaryRowView) => ({
    id: v.buf.readInt32BE(v.start[0]),
    x: v.length[1]! < 0 ? null : v.buf.readDoubleBE(v.start[1]),
    label: v.length[2]! < 0 ? null : v.buf.toString('utf8', v.start[2], v.start[2]! + v.length[2]!),
  });

  it('streams the rows a SELECT of the same query returns, floats bit for bit', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            x: fc.option(fc.double()),
            label: fc.option(
              fc.string({ unit: 'grapheme', maxLength: 20 }).filter((l) => !l.includes('\0')),
            ),
          }),
          { maxLength: 400 },
        ),
        async (rows) => {
          await client().query('BEGIN');
          try {
            await client().query(
              'CREATE TEMP TABLE co (id int, x float8, label text) ON COMMIT DROP',
            );
            await client().query(
              'INSERT INTO co SELECT i, x, l FROM unnest($1::float8[], $2::text[]) WITH ORDINALITY AS u(x, l, i)',
              [rows.map((r) => r.x), rows.map((r) => r.label)],
            );
            const got: ReturnType<typeof decode>[] = [];
            for await (const batch of copyOutBinary(
              client(),
              'SELECT id, x, label FROM co ORDER BY id',
              3,
              decode,
            ))
              got.push(...batch);
            expect(got.map((g) => g.id)).toEqual(rows.map((_, i) => i + 1));
            got.forEach((g, i) => {
              // node-postgres sends -0 as "0": the table holds +0 then.
              const sent = Object.is(rows[i]!.x, -0) ? 0 : rows[i]!.x;
              expect(Object.is(g.x, sent)).toBe(true);
              expect(g.label).toBe(rows[i]!.label);
            });
          } finally {
            await client().query('ROLLBACK');
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('a reader that stops early, or a statement that fails mid-stream, leaves the connection usable', async () => {
    /** Rows read from `sql`, all of them or only the first batch. */
    const read = async (sql: string, firstBatchOnly: boolean): Promise<number> => {
      let n = 0;
      for await (const batch of copyOutBinary(client(), sql, 3, decode)) {
        n += batch.length;
        if (firstBatchOnly) break;
      }
      return n;
    };
    await client().query('BEGIN');
    const seen = await read(
      "SELECT i, i::float8, repeat('x', 200) FROM generate_series(1, 50000) i",
      true,
    );
    expect(seen).toBeGreaterThan(0);
    expect((await client().query('SELECT 41 + 1 AS n')).rows[0]).toEqual({ n: 42 });
    await client().query('COMMIT');

    await expect(
      read('SELECT i, 1 / (i - 20000)::float8, NULL::text FROM generate_series(1, 40000) i', false),
    ).rejects.toThrow(/division by zero/);
    expect((await client().query('SELECT 1 AS n')).rows[0]).toEqual({ n: 1 });
  });
});
