import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';

/**
 * `COPY (query) TO STDOUT (FORMAT binary)` read as rows, in batches, in constant memory: the
 * server streams the rows of one statement (no keyset round trips) and formats nothing as text:
 * a float8 is its 8 IEEE bytes, a timestamptz its microseconds, a uuid its 16 bytes (PostgreSQL,
 * "COPY", Binary Format). For a pass that reads a large result once, whole: text rows cost the
 * server its float and date output and the client its parsing (BENCHMARKS.md, MRV).
 *
 * `decode` turns one row into a value: `buf` holds the row's fields, field i at `start[i]` with
 * `length[i]` bytes (−1 for NULL). The views are reused: copy what is kept.
 *
 * The statement's text cannot take bound parameters (COPY has none): callers build it from
 * values they have checked and quote with `client.escapeLiteral`. A consumer that stops early
 * has the rest drained (the connection is otherwise stuck in copy-out mode), so stopping early
 * costs the rest of the result: read to the end, or use a keyset query for a slice.
 */

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER = SIGNATURE.length + 4 + 4;

export class CopyOutFormatError extends Error {}

export interface BinaryRowView {
  buf: Buffer;
  start: Int32Array;
  length: Int32Array;
}

/**
 * A push parser of the binary COPY format: feed it the stream's chunks in order, it calls `row`
 * once per complete tuple (a tuple may span chunks). Exported for its property test.
 */
export function createBinaryCopyParser(fields: number, row: (view: BinaryRowView) => void) {
  const start = new Int32Array(fields);
  const length = new Int32Array(fields);
  let pending: Buffer | undefined;
  let headerDone = false;
  let ended = false;
  return {
    push(chunk: Buffer): void {
      const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
      pending = undefined;
      let at = 0;
      if (!headerDone) {
        if (buf.length < HEADER) {
          pending = buf;
          return;
        }
        if (!buf.subarray(0, SIGNATURE.length).equals(SIGNATURE))
          throw new CopyOutFormatError('not a binary COPY stream (bad signature)');
        const extension = buf.readUInt32BE(SIGNATURE.length + 4);
        if (buf.length < HEADER + extension) {
          pending = buf;
          return;
        }
        at = HEADER + extension;
        headerDone = true;
      }
      while (at + 2 <= buf.length) {
        if (ended) throw new CopyOutFormatError('data after the trailer');
        const n = buf.readInt16BE(at);
        if (n === -1) {
          ended = true;
          at += 2;
          continue;
        }
        if (n !== fields) throw new CopyOutFormatError(`a row of ${n} fields, ${fields} expected`);
        let p = at + 2;
        let complete = true;
        for (let i = 0; i < fields; i += 1) {
          if (p + 4 > buf.length) {
            complete = false;
            break;
          }
          const len = buf.readInt32BE(p);
          p += 4;
          if (len < -1) throw new CopyOutFormatError(`a field of length ${len}`);
          start[i] = p;
          length[i] = len;
          if (len > 0) p += len;
          if (p > buf.length) {
            complete = false;
            break;
          }
        }
        if (!complete) break;
        row({ buf, start, length });
        at = p;
      }
      if (at < buf.length) pending = buf.subarray(at);
    },
    /** Throws unless the stream ended with its trailer and nothing was left over. */
    end(): void {
      if (!ended || pending) throw new CopyOutFormatError('the COPY stream ended mid-row');
    },
  };
}

/** The rows of a binary COPY of `sql`, decoded, in batches of what one read gave. */
export async function* copyOutBinary<T>(
  client: pg.ClientBase,
  sql: string,
  fields: number,
  decode: (view: BinaryRowView) => T,
): AsyncGenerator<T[]> {
  const stream = client.query(copyTo(`COPY (${sql}) TO STDOUT (FORMAT binary)`));
  // Not `for await` over the stream: leaving that loop early destroys the stream, and a copy
  // stream destroyed mid-copy leaves the connection in copy-out mode for good.
  const queue: Buffer[] = [];
  let ended = false;
  let failure: Error | undefined;
  let discard = false;
  let wake: (() => void) | undefined;
  stream.on('data', (chunk: Buffer) => {
    if (discard) return;
    queue.push(chunk);
    if (queue.length >= 4) stream.pause();
    wake?.();
  });
  stream.on('end', () => {
    ended = true;
    wake?.();
  });
  stream.on('error', (err: Error) => {
    failure = err;
    wake?.();
  });
  let batch: T[] = [];
  const parser = createBinaryCopyParser(fields, (view) => batch.push(decode(view)));
  try {
    for (;;) {
      while (queue.length === 0 && !ended && failure === undefined)
        await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      if (failure !== undefined) throw failure;
      const chunk = queue.shift();
      if (!chunk) break;
      if (queue.length < 2 && stream.isPaused()) stream.resume();
      parser.push(chunk);
      if (batch.length > 0) {
        const out = batch;
        batch = [];
        yield out;
      }
    }
    parser.end();
  } finally {
    if (!ended && failure === undefined) {
      // Stopped early (or the decoder threw): read the rest so the connection leaves copy-out mode.
      discard = true;
      queue.length = 0;
      stream.resume();
      await new Promise<void>((resolve) => {
        if (ended || failure !== undefined) resolve();
        else wake = resolve;
      });
    }
  }
}
