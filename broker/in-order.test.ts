import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InOrder } from './in-order.ts';

describe('InOrder', () => {
  it('releases each completion once, in the order the tickets were opened, whatever order they settle in', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 40 })
          .chain((n) =>
            fc.tuple(
              fc.constant(n),
              fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
            ),
          ),
        ([n, settleOrder]) => {
          const q = new InOrder();
          const released: number[] = [];
          const tickets = Array.from({ length: n }, (_, i) => q.open(() => released.push(i)));
          const settled = new Set<number>();
          for (const i of settleOrder) {
            q.settle(tickets[i]!, null);
            settled.add(i);
            // Released so far: exactly the unbroken run of settled tickets from the first.
            let prefix = 0;
            while (settled.has(prefix)) prefix++;
            expect(released).toEqual([...Array(prefix).keys()]);
          }
          expect(q.waiting).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('passes each its own outcome', () => {
    const q = new InOrder();
    const seen: (string | null)[] = [];
    const a = q.open((err) => seen.push(err?.message ?? null));
    const b = q.open((err) => seen.push(err?.message ?? null));
    q.settle(b, new Error('b failed'));
    expect(seen).toEqual([]);
    q.settle(a, null);
    expect(seen).toEqual([null, 'b failed']);
  });

  it('copes with completions that open and settle tickets before they return', () => {
    const q = new InOrder();
    const order: string[] = [];
    const a = q.open(() => {
      order.push('a');
      // What Aedes does inside a completion: the next packet arrives, and is settled at once.
      const c = q.open(() => order.push('c'));
      q.settle(c, null);
    });
    const b = q.open(() => order.push('b'));
    q.settle(b, null);
    q.settle(a, null);
    expect(order).toEqual(['a', 'b', 'c']);
    expect(q.waiting).toBe(0);
    // And it goes on working after emptying.
    const d = q.open(() => order.push('d'));
    q.settle(d, null);
    expect(order).toEqual(['a', 'b', 'c', 'd']);
  });

  it('refuses a ticket settled twice or never opened', () => {
    const q = new InOrder();
    const a = q.open(() => undefined);
    const b = q.open(() => undefined);
    q.settle(b, null);
    expect(() => q.settle(b, null)).toThrow(/twice/);
    q.settle(a, null);
    expect(() => q.settle(a, null)).toThrow(/twice/);
    expect(() => q.settle(99, null)).toThrow(/never opened/);
  });
});
