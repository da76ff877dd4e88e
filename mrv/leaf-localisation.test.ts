import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../audit/index.ts';
import { createTestDatabase } from '../test/db.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { seedDigesterMonth } from '../test/mrv-fixture.ts';
import { createMrvRepo, createMrvService, monthPeriod, mrvSignerFromKey } from './index.ts';
import { parseReportDocument, type ReportDocument } from './mrv-report-fns.ts';
import { checkReadingsCsv, verifyReportFiles } from './mrv-verify-offline.ts';

/**
 * `verify --readings --leaf-hashes` names the exact readings that differ from the signed ones
 * (issue 20), for generated single and multiple tamperings of the export and for rows changed in
 * the database behind the archive's triggers; a forged leaf hashes file names nothing falsely.
 */

const t = await createTestDatabase();
const actor = {
  actorId: 'cli:test',
  actorRole: 'admin',
  ip: null,
  userAgent: null,
  requestId: null,
};
let dir: string;
let doc: ReportDocument;
let reportFile: string;
let lines: string[];
let hashesFile: string;
let mrv: ReturnType<typeof createMrvService>;
let fx: Awaited<ReturnType<typeof seedDigesterMonth>>;

async function exportFiles(id: string, csvName: string, hashName: string) {
  let csv = '';
  for await (const l of mrv.exportReadings(id, actor)) csv += l;
  const chunks: Buffer[] = [];
  for await (const c of mrv.exportLeafHashes(id, actor)) chunks.push(c);
  await writeFile(path.join(dir, csvName), csv);
  await writeFile(path.join(dir, hashName), Buffer.concat(chunks));
  return { csv, hashes: Buffer.concat(chunks) };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'thamani-leaves-'));
  fx = await seedDigesterMonth(t.database.pool, { minutes: 3 * 1440 });
  mrv = createMrvService({
    db: t.database.db,
    repo: createMrvRepo(),
    audit: createAuditLog({ db: t.database.db, signer: testAuditSigner }),
    signer: mrvSignerFromKey(generateKeyPairSync('ed25519').privateKey),
  });
  const issued = await mrv.issue({ unit: fx.unitId, ...monthPeriod('2026-10'), actor });
  doc = parseReportDocument(issued.document);
  reportFile = path.join(dir, 'report.json');
  await writeFile(reportFile, issued.document);
  const { csv, hashes } = await exportFiles(issued.id, 'readings.csv', 'leaves.bin');
  lines = csv.trimEnd().split('\n');
  hashesFile = path.join(dir, 'leaves.bin');
  expect(hashes.length).toBe(doc.report.merkle.size * 32);
}, 300_000);

/** Changes one CSV row the way a changed database row would come out: a value, or its seq. */
function tamper(line: string, kind: number): string {
  const cells = line.split(',');
  if (kind === 0) cells[3] = String(BigInt(cells[3]!) + 1n);
  else {
    // The first metric cell that holds a value gets another one.
    const i = cells.findIndex((c, j) => j > 3 && c !== '');
    cells[i] = String(Number(cells[i]) + 0.25 * kind);
  }
  return cells.join(',');
}

describe('exact-leaf localisation', () => {
  it('the untouched export verifies with its leaf hashes and names nothing', async () => {
    const r = await checkReadingsCsv(doc, path.join(dir, 'readings.csv'), hashesFile);
    expect(r).toMatchObject({ ok: true, differingLeaves: [] });
  });

  it('names exactly the changed readings, for generated single and multiple tamperings', async () => {
    const leaves = lines.length - 1;
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 0, max: leaves - 1 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 0, max: 3 }),
        async (victims, kind) => {
          const copy = [...lines];
          for (const v of victims) copy[v + 1] = tamper(copy[v + 1]!, kind);
          const file = path.join(dir, `tampered-${(run += 1)}.csv`);
          await writeFile(file, `${copy.join('\n')}\n`);
          const r = await checkReadingsCsv(doc, file, hashesFile);
          expect(r.ok).toBe(false);
          expect(r.differingLeaves!.map((d) => d.index)).toEqual(
            [...victims].sort((a, b) => a - b),
          );
          for (const d of r.differingLeaves!) {
            expect(d.line).toBe(d.index + 2);
            expect(copy[d.index + 1]!.startsWith(`${d.deviceId},`)).toBe(true);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('names the first reading removed from the file', async () => {
    const victim = Math.floor((lines.length - 1) / 2);
    const copy = lines.filter((_, i) => i !== victim + 1);
    const file = path.join(dir, 'removed.csv');
    await writeFile(file, `${copy.join('\n')}\n`);
    const r = await checkReadingsCsv(doc, file, hashesFile);
    expect(r.ok).toBe(false);
    expect(r.differingLeaves![0]!.index).toBe(victim);
    expect(r.problems.join('\n')).toMatch(/fewer readings/);
  });

  it('a forged leaf hashes file cannot point at an innocent reading', async () => {
    const copy = [...lines];
    copy[11] = tamper(copy[11]!, 1); // leaf 10 changed
    const file = path.join(dir, 'forged-target.csv');
    await writeFile(file, `${copy.join('\n')}\n`);
    const forged = Buffer.from(await readFile(hashesFile));
    forged.writeUInt8(forged.readUInt8(20 * 32) ^ 1, 20 * 32); // claim leaf 20 (same chunk) is the one that differs
    const forgedFile = path.join(dir, 'forged.bin');
    await writeFile(forgedFile, forged);
    const r = await checkReadingsCsv(doc, file, forgedFile);
    expect(r.ok).toBe(false);
    expect(r.differingLeaves).toEqual([]);
    expect(r.problems.join('\n')).toMatch(/does not reproduce the signed root of chunk\(s\) 0/);
  });

  it('names the rows changed in the database behind the archive triggers, through verify --leaf-hashes', async () => {
    const victims = [
      { deviceId: fx.deviceId, ts: '2026-10-02T13:37:00.000000Z' },
      { deviceId: fx.otherDeviceId, ts: '2026-10-01T05:00:00.000000Z' },
    ];
    const client = await t.database.pool.connect();
    try {
      await client.query("SET session_replication_role = 'replica'");
      for (const v of victims) {
        const changed = await client.query(
          'UPDATE mrv_readings_archive SET seq = seq + 1000 WHERE device_id = $1 AND ts = $2',
          [v.deviceId, v.ts],
        );
        expect(changed.rowCount).toBe(1);
      }
      await client.query("SET session_replication_role = 'origin'");
    } finally {
      client.release();
    }
    await exportFiles(doc.report.id, 'db-tampered.csv', 'db-leaves.bin');
    const result = await verifyReportFiles({
      report: reportFile,
      readings: path.join(dir, 'db-tampered.csv'),
      leafHashes: path.join(dir, 'db-leaves.bin'),
    });
    expect(result.readings!.ok).toBe(false);
    expect(
      result.readings!.differingLeaves!.map((d) => ({ deviceId: d.deviceId, ts: d.ts })),
    ).toEqual(
      // Leaf order: device id bytes ("mrv-…-01" < "mrv_…_00"), then time.
      victims,
    );
  });
});
