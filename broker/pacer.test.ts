import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Pacer } from './pacer.ts';

/** Busy for `ms` without yielding: a stalled event loop. */
const stall = (ms: number): void => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

describe('Pacer', () => {
  it('runs paced work in the order it arrived and never before its wait, whatever the waits and however the event loop stalls', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            wait: fc.integer({ min: 0, max: 30 }),
            stallBefore: fc.integer({ min: 0, max: 40 }),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        async (steps) => {
          const pacer = new Pacer();
          const ran: number[] = [];
          const early: number[] = [];
          let left = steps.length;
          const all = new Promise<void>((resolve) => {
            for (const [i, s] of steps.entries()) {
              // The stall runs inside this one loop iteration, as a poll phase full of handshakes does.
              stall(s.stallBefore);
              const due = performance.now() + s.wait;
              pacer.after(s.wait, () => {
                if (performance.now() + 1 < due) early.push(i);
                ran.push(i);
                if (--left === 0) resolve();
              });
            }
          });
          await all;
          expect(ran).toEqual(steps.map((_, i) => i));
          expect(early).toEqual([]);
          expect(pacer.waiting).toBe(0);
        },
      ),
      { numRuns: 60, seed: 4 },
    );
  });
});
