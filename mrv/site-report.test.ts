import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../audit/index.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { createTestDatabase } from '../test/db.ts';
import {
  digesterSpec,
  ensureFleetPartitions,
  FLEET_INTERVAL_S,
  FLEET_PERIOD,
  seedFleet,
  slotTime,
  type DigesterSpec,
  type SeededFleet,
} from '../test/mrv-site-fixture.ts';
import { createMrvRepo, createMrvService, mrvSignerFromKey, type MrvService } from './index.ts';
import { decodeProofReading, checkReadingsCsv, verifyReportFiles } from './mrv-verify-offline.ts';
import {
  checkProof,
  checkSignature,
  parseReportDocument,
  type ReportDocument,
} from './mrv-report-fns.ts';

/**
 * Site reports (issue 20): a site report's per-digester figures are those of the digesters'
 * reports issued alone and its totals their sums, over generated fleets; one Merkle root over
 * every reading, each digester's leaves the same bytes as in its own report; tampering is caught
 * (a changed reading at its leaf, a changed field by the signature, a forged proof refused).
 */

const t = await createTestDatabase();
const actor = {
  actorId: 'cli:test',
  actorRole: 'admin',
  ip: null,
  userAgent: null,
  requestId: null,
};
let mrv: MrvService;
let dir: string;

type Section = Record<string, unknown> & {
  unit: { id: string };
  leaves: { first: number; count: number };
  readings: number;
  quantities: Record<string, number> & { normalisation: Record<string, number> };
  estimate: Record<string, number>;
  quarantine: { total: number; byReason: Record<string, number> };
  completeness: {
    expectedIntervals: number;
    metrics: Record<string, { received: number; missing: number; gaps: unknown[] }>;
  };
};
type SiteBody = Record<string, unknown> & {
  digesters: Section[];
  readings: number;
  quantities: Section['quantities'];
  estimate: Record<string, number>;
  quarantine: Section['quarantine'];
};

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'thamani-site-'));
  await ensureFleetPartitions(t.database.pool);
  mrv = createMrvService({
    db: t.database.db,
    repo: createMrvRepo(),
    audit: createAuditLog({ db: t.database.db, signer: testAuditSigner }),
    signer: mrvSignerFromKey(generateKeyPairSync('ed25519').privateKey),
  });
}, 120_000);

async function fleet(specs: readonly DigesterSpec[]): Promise<SeededFleet> {
  const f = await seedFleet(t.database.pool, specs);
  await mrv.setSiteParams(
    f.siteId,
    {
      intervalSeconds: { value: FLEET_INTERVAL_S, source: 'test fleet' },
      ambientPressureKpa: { value: 84, source: 'site survey' },
    },
    actor,
  );
  for (const u of f.units) {
    const c = u.spec.failedCalibration;
    if (c)
      await mrv.addCalibration(
        {
          deviceId: u.devices[0]!,
          metric: 'gas_flow_lpm',
          validFrom: slotTime(c.from),
          validTo: slotTime(c.from + c.length),
          result: 'fail',
          reference: 'as-found out of tolerance',
        },
        actor,
      );
  }
  return f;
}

async function leafHashes(id: string): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of mrv.exportLeafHashes(id, actor)) out.push(c);
  return Buffer.concat(out);
}

const period = { start: FLEET_PERIOD.start, end: FLEET_PERIOD.end };

describe('site report over generated fleets', () => {
  it("a site report's digesters are their reports issued alone, its totals their sums, and each digester's leaves the same bytes", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(digesterSpec, { minLength: 2, maxLength: 4 }),
        fc.integer({ min: -1, max: 3 }),
        async (specs, aloneFirst) => {
          const f = await fleet(specs);
          // One digester's own report issued before the site's: its rows are archived by it.
          const first = aloneFirst >= 0 ? f.units[aloneFirst % f.units.length] : undefined;
          const alone = new Map<string, ReportDocument>();
          if (first)
            alone.set(
              first.id,
              parseReportDocument((await mrv.issue({ unit: first.id, ...period, actor })).document),
            );
          const site = await mrv.issueSite({ site: f.siteId, ...period, actor });
          const doc = parseReportDocument(site.document);
          expect(checkSignature(doc).ok).toBe(true);
          for (const u of f.units)
            if (!alone.has(u.id))
              alone.set(
                u.id,
                parseReportDocument((await mrv.issue({ unit: u.id, ...period, actor })).document),
              );
          const body = doc.report as unknown as SiteBody;
          expect(body.digesters.map((d) => d.unit.id)).toEqual(f.units.map((u) => u.id));
          const siteHashes = await leafHashes(site.id);
          const sum = (fn: (r: Section) => number) =>
            f.units.reduce((a, u) => a + fn(alone.get(u.id)!.report as unknown as Section), 0);
          for (const [i, u] of f.units.entries()) {
            const own = alone.get(u.id)!.report as unknown as Section;
            const sec = body.digesters[i]!;
            for (const k of [
              'readings',
              'quantities',
              'estimate',
              'completeness',
              'quarantine',
              'excludedReadings',
              'provenance',
            ])
              expect([u.name, k, sec[k]]).toEqual([u.name, k, own[k]]);
            // The digester's leaves are a run of the site's tree, byte for byte.
            const ownHashes = await leafHashes(own.id as string);
            expect(sec.leaves.count).toBe(alone.get(u.id)!.report.merkle.size);
            expect(
              siteHashes.subarray(
                sec.leaves.first * 32,
                (sec.leaves.first + sec.leaves.count) * 32,
              ),
            ).toEqual(ownHashes);
          }
          expect(doc.report.merkle.size).toBe(
            sum((r) => (r as unknown as ReportDocument['report']).merkle.size),
          );
          expect(body.readings).toBe(sum((r) => r.readings));
          for (const k of ['biogasM3', 'biogasNm3', 'methaneNm3', 'methaneKg', 'energyMj'])
            expect([k, body.quantities[k]]).toEqual([k, sum((r) => r.quantities[k]!)]);
          for (const k of ['displacedFuelKgCo2e', 'avoidedMethaneKgCo2e', 'totalKgCo2e'])
            expect([k, body.estimate[k]]).toEqual([k, sum((r) => r.estimate[k]!)]);
          expect(body.quarantine.total).toBe(sum((r) => r.quarantine.total));
          // A digester that sent nothing is listed: no production, every slot one gap.
          for (const [i, u] of f.units.entries())
            if (u.spec.silent) {
              const sec = body.digesters[i]!;
              expect(sec.readings).toBe(0);
              expect(sec.quantities.biogasNm3).toBe(0);
              expect(sec.completeness.metrics.gas_flow_lpm!.missing).toBe(
                sec.completeness.expectedIntervals,
              );
              expect(sec.completeness.metrics.gas_flow_lpm!.gaps).toHaveLength(1);
            }
        },
      ),
      { numRuns: 12 },
    );
  }, 600_000);
});

describe('a site report with a silent digester, verified offline', () => {
  let f: SeededFleet;
  let doc: ReportDocument;
  let reportFile: string;
  let lines: string[];
  let siteId: string;

  beforeAll(async () => {
    const base = { missing: 50, devices: 2 as const, quarantined: [3], failedCalibration: null };
    f = await fleet([
      { ...base, silent: false, seed: 1, offline: { from: 144, length: 144 } },
      { ...base, silent: true, seed: 2, offline: { from: 0, length: 0 } },
      { ...base, silent: false, seed: 3, offline: { from: 10, length: 20 } },
    ]);
    const issued = await mrv.issueSite({ site: f.siteName, ...period, actor });
    siteId = issued.id;
    doc = parseReportDocument(issued.document);
    reportFile = path.join(dir, 'site.json');
    await writeFile(reportFile, issued.document);
    let csv = '';
    for await (const l of mrv.exportReadings(issued.id, actor)) csv += l;
    lines = csv.trimEnd().split('\n');
    await writeFile(path.join(dir, 'site.csv'), csv);
    await writeFile(path.join(dir, 'site-leaves.bin'), await leafHashes(issued.id));
  }, 300_000);

  it('lists the silent digester with zero production and one gap over the whole period', () => {
    const body = doc.report as unknown as SiteBody;
    expect(body.digesters).toHaveLength(3);
    const silent = body.digesters.find(
      (d) => d.unit.id === f.units.find((u) => u.spec.silent)!.id,
    )!;
    expect(silent.readings).toBe(0);
    expect(silent.leaves.count).toBe(0);
    expect(silent.quantities.energyMj).toBe(0);
    expect(silent.completeness.metrics.gas_flow_lpm).toMatchObject({
      received: 0,
      missing: 288,
      gaps: [
        {
          start: '2026-10-05T00:00:00.000000Z',
          end: '2026-10-07T00:00:00.000000Z',
          intervals: 288,
        },
      ],
    });
    expect(body.readings).toBeGreaterThan(0);
    expect(doc.report.merkle.leafOrder).toBe('unit id bytes, then device_id bytes, then ts');
  });

  it('verifies offline from its export; a changed reading of any digester is named at its leaf', async () => {
    const ok = await verifyReportFiles({
      report: reportFile,
      readings: path.join(dir, 'site.csv'),
      leafHashes: path.join(dir, 'site-leaves.bin'),
    });
    expect(ok.signature.ok).toBe(true);
    expect(ok.readings).toMatchObject({ ok: true, differingLeaves: [] });
    const leaves = lines.length - 1;
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: leaves - 1 }), async (victim) => {
        const copy = [...lines];
        const cells = copy[victim + 1]!.split(',');
        cells[3] = String(BigInt(cells[3]!) + 1n); // its seq
        copy[victim + 1] = cells.join(',');
        const file = path.join(dir, `site-tampered-${(run += 1)}.csv`);
        await writeFile(file, `${copy.join('\n')}\n`);
        const r = await checkReadingsCsv(doc, file, path.join(dir, 'site-leaves.bin'));
        expect(r.ok).toBe(false);
        expect(r.differingLeaves!.map((d) => d.index)).toEqual([victim]);
      }),
      { numRuns: 15 },
    );
  });

  it('a changed field fails the signature', async () => {
    const text = await readFile(reportFile, 'utf8');
    const changed = JSON.parse(text) as { report: SiteBody };
    const q = changed.report.digesters[0]!.quantities;
    q.biogasNm3 = q.biogasNm3! + 0.001;
    const file = path.join(dir, 'site-changed.json');
    await writeFile(file, JSON.stringify(changed));
    const r = await verifyReportFiles({ report: file });
    expect(r.signature.ok).toBe(false);
    expect(r.signature.problems.join('\n')).toMatch(/signature does not match/);
  });

  it('proves any reading of any digester of the site; a forged proof is refused', async () => {
    const body = doc.report as unknown as SiteBody;
    for (const u of f.units.filter((x) => !x.spec.silent)) {
      const sec = body.digesters.find((d) => d.unit.id === u.id)!;
      // The last reading of the digester: its leaf lies after the other digesters' leaves.
      const row = lines[sec.leaves.first + sec.leaves.count]!.split(',');
      const proof = await mrv.prove(siteId, row[0]!, row[2]!);
      expect(proof.leafIndex).toBe(sec.leaves.first + sec.leaves.count - 1);
      expect(checkProof(doc, proof, decodeProofReading)).toEqual([]);
      const forged = {
        ...proof,
        reading: { ...proof.reading, values: { ...proof.reading.values, gas_flow_lpm: 99 } },
      };
      expect(checkProof(doc, forged, decodeProofReading).join('\n')).toMatch(
        /not the canonical encoding/,
      );
      const reEncoded = { ...forged, leaf: '' };
      expect(checkProof(doc, reEncoded, decodeProofReading).length).toBeGreaterThan(0);
    }
    await expect(
      mrv.prove(siteId, f.units[0]!.devices[0]!, '2026-10-04T00:00:00Z'),
    ).rejects.toMatchObject({ code: 'MRV_READING_NOT_IN_REPORT' });
  });

  it('a correction supersedes with a reason and keeps the leaves of the first version; a second first version is refused', async () => {
    await expect(mrv.issueSite({ site: f.siteId, ...period, actor })).rejects.toMatchObject({
      code: 'MRV_ALREADY_ISSUED',
    });
    // A late reading of the first digester arrives after the report.
    const late = f.units.find((u) => !u.spec.silent)!;
    await t.database.pool.query(
      `INSERT INTO readings (ts, device_id, unit_id, seq, gas_flow_lpm) VALUES ($1, $2, $3, 99999, 12.5)`,
      [
        new Date(FLEET_PERIOD.start.getTime() + 150 * FLEET_INTERVAL_S * 1000 + 31_000),
        late.devices[0],
        late.id,
      ],
    );
    const v2 = await mrv.issueSite({ site: f.siteId, ...period, actor, reason: 'late reading' });
    const d2 = parseReportDocument(v2.document);
    expect(d2.report).toMatchObject({
      version: 2,
      supersedes: siteId,
      supersedeReason: 'late reading',
    });
    expect(d2.report.merkle.size).toBe(doc.report.merkle.size + 1);
    // The first version's leaves did not change.
    let csv = '';
    for await (const l of mrv.exportReadings(siteId, actor)) csv += l;
    expect(csv.trimEnd().split('\n')).toEqual(lines);
    await expect(
      t.database.pool.query('UPDATE mrv_reports SET reason = $1 WHERE id = $2', ['x', siteId]),
    ).rejects.toThrow(/append-only/);
    const { rows } = await t.database.pool.query<{ action: string; n: number }>(
      "SELECT action, count(*)::int AS n FROM audit_log WHERE target_id = ANY($1) AND action = 'mrv.report_issue' GROUP BY 1",
      [[siteId, v2.id]],
    );
    expect(rows).toEqual([{ action: 'mrv.report_issue', n: 2 }]);
  });

  it('refuses an unknown site and a site without a digester', async () => {
    await expect(mrv.issueSite({ site: 'no such site', ...period, actor })).rejects.toMatchObject({
      code: 'MRV_SITE_NOT_FOUND',
    });
    const empty = await t.database.pool.query<{ id: string }>(
      "INSERT INTO sites (name) VALUES ('empty site') RETURNING id",
    );
    await expect(
      mrv.issueSite({ site: empty.rows[0]!.id, ...period, actor }),
    ).rejects.toMatchObject({ code: 'MRV_SITE_WITHOUT_DIGESTERS' });
  });
});
