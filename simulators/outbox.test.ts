import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.ts';
import { openOutbox } from './outbox.ts';
import { mulberry32 } from './random.ts';

describe('device outbox', () => {
  it('keeps every reading until it is acknowledged, in seq order, across a reopen', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'thamani-outbox-'));
    const box = await openOutbox(dir);
    for (const seq of [3, 1, 2, 10])
      await box.add({ seq, ts: new Date(seq * 1000).toISOString(), readings: { ph: 7 } });
    await box.ack([2]);
    const reopened = await openOutbox(dir);
    expect((await reopened.pending()).map((e) => e.seq)).toEqual([1, 3, 10]);
    expect((await reopened.pending(2)).map((e) => e.seq)).toEqual([1, 3]);
    await reopened.ack([1, 3, 10]);
    expect(await reopened.size()).toBe(0);
  });

  it('survives a crash in the middle of a write: the half-written reading is not there, the others are', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'thamani-outbox-'));
    const box = await openOutbox(dir);
    await box.add({ seq: 1, ts: new Date(1000).toISOString(), readings: { ph: 7 } });
    // What a crash between writeFile and rename leaves behind: a truncated temporary file.
    writeFileSync(path.join(dir, `${String(2).padStart(16, '0')}.json.tmp`), '{"seq":2,"ts":"19');
    const reopened = await openOutbox(dir);
    expect((await reopened.pending()).map((e) => e.seq)).toEqual([1]);
    expect(readdirSync(dir).some((f) => f.endsWith('.tmp'))).toBe(false);
  });
});

describe('reconnect backoff', () => {
  it('grows exponentially up to the cap, with full jitter', () => {
    const rand = mulberry32(1);
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(60_000, 500 * 2 ** attempt);
      const delays = Array.from({ length: 200 }, () => backoffDelay(attempt, rand));
      expect(Math.max(...delays)).toBeLessThan(ceiling);
      expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
      // Spread over the whole range, so reconnects of a fleet do not line up.
      expect(Math.max(...delays) - Math.min(...delays)).toBeGreaterThan(ceiling * 0.8);
    }
  });
});
