import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { shareOutcome, type JobIn, type QuarantineIn, type RowIn } from './commit-fns.ts';
import type { Decision, Fate } from './instant-fns.ts';

const row = (seq: number): RowIn => ({
  deviceId: 'd',
  unitId: 'u',
  seq,
  ts: new Date(seq),
  values: {},
  expect: 'any',
});
const record = {
  deviceId: 'd',
  unitId: 'u',
  receivedAt: new Date(0),
  topic: 't',
  payload: Buffer.alloc(0),
  payloadSize: 0,
  batchIndex: undefined,
  seq: undefined,
  reasons: [],
} satisfies QuarantineIn;

describe('shareOutcome (generated commits)', () => {
  it('gives every row exactly one outcome and every quarantine id to exactly one job: its own records first, then its refused rows', () => {
    const fates: Fate[] = ['store', 'duplicate', 'conflict', 'regression'];
    const job = fc.record({
      fates: fc.array(fc.constantFrom(...fates), { maxLength: 6 }),
      own: fc.nat({ max: 3 }),
    });
    fc.assert(
      fc.property(fc.array(job, { minLength: 1, maxLength: 6 }), (spec) => {
        let seq = 0;
        const jobs: JobIn[] = spec.map((s) => ({
          rows: s.fates.map(() => row(seq++)),
          quarantine: Array.from({ length: s.own }, () => record),
        }));
        const decisions: Decision[] = spec.flatMap((s) =>
          s.fates.map((fate) =>
            fate === 'store' ? { fate } : { fate, occupant: { seq: 1, values: {} } },
          ),
        );
        const refusedCount = decisions.filter(
          (d) => d.fate === 'conflict' || d.fate === 'regression',
        ).length;
        const ownCount = spec.reduce((n, s) => n + s.own, 0);
        // Ids as the repo returns them: the jobs' own records in order, then the refused rows'.
        const qIds = Array.from({ length: ownCount + refusedCount }, (_, i) => 1000 + i);
        const results = shareOutcome(jobs, decisions, qIds);
        let ownAt = 0;
        let refusedAt = ownCount;
        for (const [i, s] of spec.entries()) {
          const r = results[i]!;
          const count = (f: Fate): number => s.fates.filter((x) => x === f).length;
          expect(r).toMatchObject({
            stored: count('store'),
            duplicates: count('duplicate'),
            conflicts: count('conflict'),
            regressions: count('regression'),
          });
          const refusedHere = count('conflict') + count('regression');
          expect(r.quarantineIds).toEqual([
            ...qIds.slice(ownAt, ownAt + s.own),
            ...qIds.slice(refusedAt, refusedAt + refusedHere),
          ]);
          expect(r.refused.map((x) => x.seq)).toEqual(
            jobs[i]!.rows.filter(
              (_, k) => s.fates[k] === 'conflict' || s.fates[k] === 'regression',
            ).map((x) => x.seq),
          );
          expect(r.refused.map((x) => x.code)).toEqual(
            s.fates
              .filter((f) => f === 'conflict' || f === 'regression')
              .map((f) => (f === 'conflict' ? 'TS_CONFLICT' : 'SEQ_REGRESSION')),
          );
          ownAt += s.own;
          refusedAt += refusedHere;
        }
      }),
      { numRuns: 300 },
    );
  });
});
