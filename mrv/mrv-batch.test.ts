import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../audit/index.ts';
import { createTestDatabase } from '../test/db.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { seedDigesterMonth } from '../test/mrv-fixture.ts';
import { issueBatch, type BatchOutcome } from './mrv-batch-service.ts';
import { MrvError } from './mrv-errors.ts';
import { createMrvRepo } from './mrv-repo.ts';
import { checkSignature, parseReportDocument } from './mrv-report-fns.ts';
import { createMrvService, monthPeriod, type MrvService } from './mrv-service.ts';
import { mrvSignerFromKey } from './mrv-signer.ts';

const t = await createTestDatabase();
const actor = { actorId: 'cli:tester', actorRole: 'admin' };
let mrv: MrvService;
const digesters: string[] = [];

beforeAll(async () => {
  for (let i = 0; i < 3; i += 1)
    digesters.push((await seedDigesterMonth(t.database.pool, { minutes: 2 * 1440 })).unitId);
  mrv = createMrvService({
    db: t.database.db,
    repo: createMrvRepo(),
    audit: createAuditLog({ db: t.database.db, signer: testAuditSigner }),
    signer: mrvSignerFromKey(generateKeyPairSync('ed25519').privateKey),
  });
}, 300_000);

describe('issuing a month for many digesters (mrv issue --all)', () => {
  it('issues each digester once, concurrently, each report over its own digester readings; refusals are per unit', async () => {
    const site = await t.database.pool.query<{ id: string }>(
      "INSERT INTO units (site_id, kind, name) SELECT site_id, 'collection_point', 'batch cp' FROM units WHERE id = $1 RETURNING id",
      [digesters[0]],
    );
    const outcomes: BatchOutcome[] = [];
    const run = (units: string[]) =>
      issueBatch(
        { mrv },
        {
          units,
          ...monthPeriod('2026-10'),
          actor,
          concurrency: 3,
          onOutcome: (o) => void outcomes.push(o),
        },
      );
    expect(await run([...digesters, site.rows[0]!.id, 'nowhere'])).toEqual({
      issued: 3,
      refused: 2,
    });
    expect(outcomes.filter((o) => !o.ok).map((o) => [o.unit, o.code])).toEqual(
      expect.arrayContaining([
        [site.rows[0]!.id, 'MRV_NOT_A_DIGESTER'],
        ['nowhere', 'UNIT_NOT_FOUND'],
      ]),
    );
    for (const o of outcomes.filter((x) => x.ok)) {
      const doc = parseReportDocument(o.document);
      expect(checkSignature(doc).ok).toBe(true);
      expect((doc.report.subject as { unit: { id: string } }).unit.id).toBe(o.unit);
      // Each transaction streamed only its own digester's archived rows.
      const n = await t.database.pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM readings WHERE unit_id = $1 AND ts >= '2026-10-01' AND ts < '2026-11-01'",
        [o.unit],
      );
      expect(doc.report.merkle.size).toBe(n.rows[0]!.n);
    }
    outcomes.length = 0;
    // A second run refuses every digester (already issued) and issues nothing twice.
    expect(await run(digesters)).toEqual({ issued: 0, refused: 3 });
    expect(outcomes.every((o) => !o.ok && o.code === 'MRV_ALREADY_ISSUED')).toBe(true);
    const reports = await t.database.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM mrv_reports',
    );
    expect(reports.rows[0]!.n).toBe(3);
  }, 300_000);

  it('refuses a concurrency that is not a whole number from 1 to 64, and an empty batch', async () => {
    const base = { ...monthPeriod('2026-10'), actor, onOutcome: () => undefined };
    for (const concurrency of [0, -1, 1.5, 65, Number.NaN])
      await expect(issueBatch({ mrv }, { ...base, units: digesters, concurrency })).rejects.toThrow(
        MrvError.BAD_BATCH,
      );
    await expect(issueBatch({ mrv }, { ...base, units: [], concurrency: 2 })).rejects.toThrow(
      MrvError.BAD_BATCH,
    );
  });

  it('property: every unit gets exactly one outcome, never more than `concurrency` in flight, a non-refusal ends the batch', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1, max: 8 }),
        fc.func(fc.constantFrom('ok', 'refused', 'ok', 'ok')),
        async (units, concurrency, fate) => {
          let inFlight = 0;
          let peak = 0;
          const seen: string[] = [];
          // The pool's bookkeeping over a stand-in issue that yields to the event loop.
          const issue: Pick<MrvService, 'issue'>['issue'] = async (o) => {
            inFlight += 1;
            peak = Math.max(peak, inFlight);
            await new Promise((r) => setImmediate(r));
            inFlight -= 1;
            if (fate(o.unit) === 'refused') throw new MrvError.ALREADY_ISSUED(o.unit, 1);
            return { id: o.unit, version: 1, document: '' };
          };
          const r = await issueBatch(
            { mrv: { issue } },
            {
              units,
              ...monthPeriod('2026-10'),
              actor,
              concurrency,
              onOutcome: (o) => void seen.push(o.unit),
            },
          );
          expect(seen.slice().sort()).toEqual(units.slice().sort());
          expect(r.issued + r.refused).toBe(units.length);
          expect(peak).toBeLessThanOrEqual(concurrency);
          expect(peak).toBe(Math.min(concurrency, units.length));
        },
      ),
      { numRuns: 60 },
    );
    const broken: Pick<MrvService, 'issue'>['issue'] = () =>
      Promise.reject(new Error('connection terminated'));
    await expect(
      issueBatch(
        { mrv: { issue: broken } },
        {
          units: ['a', 'b'],
          ...monthPeriod('2026-10'),
          actor,
          concurrency: 2,
          onOutcome: () => undefined,
        },
      ),
    ).rejects.toThrow('connection terminated');
  });
});
