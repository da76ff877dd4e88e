import { PassThrough, type Readable } from 'node:stream';

/**
 * Streams the lines of a generator that must run inside a scoped transaction: the transaction
 * stays open until the last line is written (with backpressure) or the client goes away. The first
 * line is read before answering, so an unknown report or a refused scope is an error, not a
 * broken stream.
 */
export async function scopedStream<S>(
  run: (fn: (s: S) => Promise<void>) => Promise<void>,
  lines: (s: S) => AsyncGenerator<string | Buffer>,
): Promise<Readable> {
  const out = new PassThrough();
  let started!: (v: undefined) => void;
  let failed!: (err: unknown) => void;
  const first = new Promise<undefined>((resolve, reject) => {
    started = resolve;
    failed = reject;
  });
  let begun = false;
  void run(async (s) => {
    const gen = lines(s);
    try {
      for await (const line of gen) {
        if (!begun) {
          begun = true;
          started(undefined);
        }
        if (out.destroyed) return;
        if (!out.write(line))
          await new Promise<void>((resolve) => {
            out.once('drain', resolve);
            out.once('close', resolve);
          });
      }
    } finally {
      await gen.return(undefined);
    }
  }).then(
    () => {
      started(undefined);
      out.end();
    },
    (err: unknown) => {
      if (begun) out.destroy(err as Error);
      else failed(err);
    },
  );
  await first;
  return out;
}
