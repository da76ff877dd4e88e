import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { testLogger } from '../test/db.ts';
import { createSessionControl } from './session-control.ts';

/**
 * Revocations in a row each re-read the CRL (session-control.ts); those reads overlap and may
 * answer in any order. Whatever the order, the TLS listener must end with the newest CRL and
 * never go back to an older one (a revocation would vanish from the handshake check until the
 * next one). Each read returns the registry's CRL as of when it started: read i knows i revocations.
 */
describe('CRL refresh', () => {
  it('applies CRLs only newest-last, whatever order overlapping reads answer in', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 1, max: 8 })
          .chain((n) =>
            fc.tuple(
              fc.constant(n),
              fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
            ),
          ),
        async ([n, order]) => {
          const reads: ((crl: string[]) => void)[] = [];
          const applied: number[] = [];
          let revocations = 0;
          const control = createSessionControl({
            config: { revalidateIntervalMs: 3_600_000 },
            logger: testLogger,
            sessions: { entries: () => [][Symbol.iterator](), all: () => [], get: () => undefined },
            counters: { cutOffs: 0 },
            identity: { connectionIdentities: () => Promise.resolve(new Map()) },
            registry: {
              invalidateSerial: () => undefined,
              invalidateDevice: () => undefined,
              clear: () => undefined,
            },
            crl: () => {
              const known = ++revocations;
              return new Promise((resolve) => reads.push(() => resolve([`crl-${known}`])));
            },
            setCrl: (crl) => applied.push(Number(crl![0]!.slice(4))),
          });
          const done = Array.from({ length: n }, () => control.refreshCrl());
          for (const i of order) {
            reads[i]!([]);
            await new Promise((r) => setTimeout(r, 0));
          }
          await Promise.all(done);
          control.stop();
          expect(applied.at(-1)).toBe(n);
          expect(applied).toEqual([...applied].sort((a, b) => a - b));
        },
      ),
      { numRuns: 200 },
    );
  });
});
