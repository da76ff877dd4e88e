import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelay, DEVICE_BACKOFF } from './backoff.ts';

/** The device contract's reconnect schedule (docs/device-contract.md, "Reconnecting"), as the simulator runs it. */
describe('reconnect backoff', () => {
  it('waits a uniformly jittered time below min(cap, base · 2^attempt), growing with the attempt and capped', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 200 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, r1, r2) => {
          const ceiling = Math.min(DEVICE_BACKOFF.capMs, DEVICE_BACKOFF.baseMs * 2 ** attempt);
          const d = backoffDelay(attempt, () => r1, DEVICE_BACKOFF);
          expect(Number.isInteger(d)).toBe(true);
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThan(Math.max(1, ceiling));
          // Full jitter: the delay is the random draw scaled to the ceiling, so the fleet spreads over all of it.
          expect(d).toBe(Math.floor(r1 * ceiling));
          if (r1 <= r2)
            expect(d).toBeLessThanOrEqual(backoffDelay(attempt, () => r2, DEVICE_BACKOFF));
          // The same draw never waits less at a later attempt; the cap holds for ever.
          expect(backoffDelay(attempt + 1, () => r1, DEVICE_BACKOFF)).toBeGreaterThanOrEqual(d);
          expect(backoffDelay(attempt + 1000, () => r1, DEVICE_BACKOFF)).toBe(
            Math.floor(r1 * DEVICE_BACKOFF.capMs),
          );
        },
      ),
    );
  });

  it('spreads a fleet cut off together: the first retries of 5,000 devices cover the first window evenly', () => {
    let seed = 42;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const delays = Array.from({ length: 5000 }, () => backoffDelay(0, rand, DEVICE_BACKOFF));
    const tenths = new Array<number>(10).fill(0);
    for (const d of delays) tenths[Math.floor((d / DEVICE_BACKOFF.baseMs) * 10)]!++;
    for (const n of tenths) expect(n).toBeGreaterThan(350); // 500 each on average
  });
});
