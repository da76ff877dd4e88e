import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../audit/index.ts';
import { createTestDatabase } from '../test/db.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { isoToMicros, microsToIso } from './mrv-encoding.ts';
import { createMrvService, monthPeriod, type MrvService } from './mrv-service.ts';
import { createMrvRepo } from './mrv-repo.ts';
import { loadOrCreateMrvSigner, MRV_PUBLIC_KEY_FILE } from './mrv-signer.ts';
import { checkReadingsCsv, verifyReportFiles } from './mrv-verify-offline.ts';
import {
  checkProof,
  checkSignature,
  parseReportDocument,
  type ReportDocument,
} from './mrv-report-fns.ts';
import { decodeProofReading } from './mrv-verify-offline.ts';
import {
  isQuarantined,
  MONTH,
  OFFLINE_DAY,
  physics,
  quarantineCode,
  seedDigesterMonth,
  type DigesterFixture,
} from '../test/mrv-fixture.ts';
import { parsePublicKeys } from '../audit/audit-signer.ts';

const t = await createTestDatabase();
const actor = { actorId: 'cli:tester', actorRole: 'admin' };
const AMBIENT = 82; // Nairobi-like site pressure, set as a site parameter
const FAIL_FROM = 19 * 1440 + 6 * 60; // 2026-10-20 06:00, flow meter failed its calibration for 2 h
const FAIL_TO = FAIL_FROM + 120;

let fx: DigesterFixture;
let mrv: MrvService;
let dir: string;
let doc: ReportDocument;
let reportFile: string;
/** The correction (v2), issued after the tampering test: over the archive as it then was. */
let corrected: ReportDocument;

/** The expected report, computed here from the generator, without the code under test. */
function independent() {
  let m3 = 0;
  let nm3 = 0;
  let ch4Sum = 0;
  let ch4Count = 0;
  const flowMinutes = new Set<number>();
  const minutesWith: Record<string, Set<number>> = {
    gas_flow_lpm: flowMinutes,
    methane_pct: new Set(),
    temperature_c: new Set(),
    biogas_pressure_kpa: new Set(),
  };
  for (const s of physics()) {
    if (s.methane !== undefined) {
      ch4Sum += s.methane / 100;
      ch4Count += 1;
      minutesWith.methane_pct!.add(s.minute);
    }
    if (s.temperature !== undefined) minutesWith.temperature_c!.add(s.minute);
    if (s.pressure !== undefined) minutesWith.biogas_pressure_kpa!.add(s.minute);
    if (s.minute >= FAIL_FROM && s.minute < FAIL_TO) continue;
    flowMinutes.add(s.minute);
    // Every kept reading is one minute apart from the next or followed by a gap: it holds 1 minute.
    const v = s.flow / 1000;
    m3 += v;
    nm3 +=
      v * ((AMBIENT + (s.pressure ?? 0)) / 101.325) * (273.15 / (273.15 + (s.temperature ?? 35)));
  }
  const fraction = ch4Sum / ch4Count;
  const gapsOf = (set: Set<number>) => {
    const gaps: { start: string; end: string; intervals: number }[] = [];
    for (let i = 0; i < MONTH.minutes; i += 1) {
      if (set.has(i)) continue;
      let j = i;
      while (j < MONTH.minutes && !set.has(j)) j += 1;
      const at = (k: number) =>
        new Date(MONTH.start.getTime() + k * 60_000).toISOString().replace('Z', '000Z');
      gaps.push({ start: at(i), end: at(j), intervals: j - i });
      i = j;
    }
    return gaps;
  };
  return { m3, nm3, fraction, ch4Kg: nm3 * fraction * 0.7168, minutesWith, gapsOf };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'thamani-mrv-'));
  fx = await seedDigesterMonth(t.database.pool);
  const signer = await loadOrCreateMrvSigner({
    dir,
    passphrase: 'test passphrase for the mrv key',
  });
  mrv = createMrvService({
    db: t.database.db,
    repo: createMrvRepo(),
    audit: createAuditLog({ db: t.database.db, signer: testAuditSigner }),
    signer,
  });
  // The certificate that authenticated the digester over the period (the registry's row; its PEM is not read here).
  await t.database.pool.query(
    "INSERT INTO certificates (serial, device_id, fingerprint_sha256, not_before, not_after, issued_by, pem) VALUES ('1a2b3c', $1, $2, '2026-09-01Z', '2027-09-01Z', 'test', 'not read')",
    [fx.deviceId, 'ab'.repeat(32)],
  );
  await mrv.setSiteParams(
    fx.siteId,
    { ambientPressureKpa: { value: AMBIENT, source: 'site survey, 1 795 m' } },
    actor,
  );
  await mrv.addCalibration(
    {
      deviceId: fx.deviceId,
      metric: 'gas_flow_lpm',
      validFrom: new Date(MONTH.start.getTime() + FAIL_FROM * 60_000),
      validTo: new Date(MONTH.start.getTime() + FAIL_TO * 60_000),
      result: 'fail',
      reference: 'as-found 12 % high, cert K-2026-114',
    },
    actor,
  );
  const issued = await mrv.issue({ unit: fx.unitId, ...monthPeriod('2026-10'), actor });
  reportFile = path.join(dir, 'report.json');
  await writeFile(reportFile, issued.document);
  doc = parseReportDocument(issued.document);
}, 300_000);

describe('MRV report of a month of 1-minute readings', () => {
  it('reports the metered quantities of the independent computation (relative tolerance 1e-9)', () => {
    const want = independent();
    const q = doc.report.quantities as Record<string, number>;
    const close = (got: number, expected: number) =>
      expect(Math.abs(got - expected) / expected).toBeLessThan(1e-9);
    close(q.biogasM3!, want.m3);
    close(q.biogasNm3!, want.nm3);
    close(q.methaneFraction!, want.fraction);
    close(q.methaneNm3!, want.nm3 * want.fraction);
    close(q.methaneKg!, want.ch4Kg);
    close(q.energyMj!, want.ch4Kg * 50);
    const e = doc.report.estimate as Record<string, number>;
    close(e.totalKgCo2e!, want.ch4Kg * 50 * 0.0631);
    expect(e.avoidedMethaneKgCo2e).toBe(0);
    const p = doc.report.parameters as Record<string, { value: unknown; source: string }>;
    expect(p.ambientPressureKpa).toEqual({ value: AMBIENT, source: 'site survey, 1 795 m' });
    expect(p.gwpCh4).toEqual({ value: 27, source: expect.stringContaining('AR6') });
  });

  it('counts completeness and lists every gap exactly, the offline day as one gap', () => {
    const want = independent();
    const c = doc.report.completeness as {
      expectedIntervals: number;
      metrics: Record<
        string,
        {
          received: number;
          missing: number;
          gaps: { start: string; end: string; intervals: number }[];
        }
      >;
    };
    expect(c.expectedIntervals).toBe(MONTH.minutes);
    for (const [metric, minutes] of Object.entries(want.minutesWith)) {
      expect(c.metrics[metric]!.received, metric).toBe(minutes.size);
      expect(c.metrics[metric]!.missing, metric).toBe(MONTH.minutes - minutes.size);
      expect(c.metrics[metric]!.gaps, metric).toEqual(want.gapsOf(minutes));
    }
    const offline = c.metrics.gas_flow_lpm!.gaps.find(
      (g) => g.start === '2026-10-10T00:00:00.000000Z',
    );
    expect(offline?.intervals).toBeGreaterThanOrEqual(1440);
  });

  it('counts quarantined readings by reason and lists the out-of-calibration ones it excluded', () => {
    const quarantined = [...Array(MONTH.minutes).keys()].filter(
      (i) => isQuarantined(i) && Math.floor(i / 1440) !== OFFLINE_DAY,
    );
    const byReason: Record<string, number> = {};
    for (const i of quarantined)
      byReason[quarantineCode(i)] = (byReason[quarantineCode(i)] ?? 0) + 1;
    expect(doc.report.quarantine).toEqual({ total: quarantined.length, byReason });
    const excluded = doc.report.excludedReadings as {
      deviceId: string;
      metric: string;
      reason: string;
      count: number;
      first: string;
    }[];
    expect(excluded).toHaveLength(1);
    expect(excluded[0]).toMatchObject({
      deviceId: fx.deviceId,
      metric: 'gas_flow_lpm',
      reason: 'calibration_failed',
      first: '2026-10-20T06:00:00.000000Z',
      count: [...physics()].filter((s) => s.minute >= FAIL_FROM && s.minute < FAIL_TO).length,
    });
    const prov = doc.report.provenance as {
      devices: { id: string; firmwareVersion: string; certificates: unknown[] }[];
      calibrations: unknown[];
    };
    expect(prov.devices.map((d) => d.id)).toEqual(
      [fx.deviceId, fx.otherDeviceId].sort((a, b) =>
        Buffer.compare(Buffer.from(a), Buffer.from(b)),
      ),
    );
    expect(prov.calibrations).toHaveLength(1);
    expect(prov.devices[0]).toMatchObject({
      id: fx.deviceId,
      firmwareVersion: '1.4.2',
      certificates: [
        {
          serial: '1a2b3c',
          fingerprintSha256: 'ab'.repeat(32),
          notBefore: '2026-09-01T00:00:00.000000Z',
          notAfter: '2027-09-01T00:00:00.000000Z',
          status: 'active',
          revokedAt: null,
        },
      ],
    });
  });

  it('signs the report: valid as issued, under the published key; a changed field fails the signature', async () => {
    const pub = parsePublicKeys(await readFile(path.join(dir, MRV_PUBLIC_KEY_FILE), 'utf8'));
    expect(checkSignature(doc, pub)).toMatchObject({ ok: true, trustedKey: true });
    for (const change of [
      (d: ReportDocument) => ((d.report.quantities as Record<string, number>).biogasNm3! *= 1.01),
      (d: ReportDocument) =>
        ((d.report.period as Record<string, string>).end = '2026-11-02T00:00:00.000000Z'),
      (d: ReportDocument) =>
        (d.report.merkle.root = d.report.merkle.root.replace(/^./, (c) => (c === '0' ? '1' : '0'))),
      (d: ReportDocument) =>
        ((d.report.parameters as Record<string, { value: number }>).gwpCh4!.value = 29.8),
    ]) {
      const forged = structuredClone(doc);
      change(forged);
      const check = checkSignature(forged, pub);
      expect(check.ok).toBe(false);
      expect(check.problems.join()).toMatch(/signature does not match/);
    }
  });

  it('recomputes the root from the readings export; a reading changed in the database fails at its chunk', async () => {
    const csv = path.join(dir, 'readings.csv');
    const write = async () => {
      let text = '';
      for await (const line of mrv.exportReadings(doc.report.id, actor)) text += line;
      await writeFile(csv, text);
    };
    await write();
    const good = await checkReadingsCsv(doc, csv);
    expect(good).toMatchObject({ ok: true, leaves: fx.readings, root: doc.report.merkle.root });
    expect(doc.report.merkle.size).toBe(fx.readings);

    // Tamper behind the triggers' back, as a database superuser could.
    const victim = { deviceId: fx.deviceId, ts: '2026-10-17T13:37:00.000000Z' };
    const client = await t.database.pool.connect();
    try {
      await client.query("SET session_replication_role = 'replica'");
      const changed = await client.query(
        'UPDATE mrv_readings_archive SET gas_flow_lpm = gas_flow_lpm + 0.5 WHERE device_id = $1 AND ts = $2',
        [victim.deviceId, victim.ts],
      );
      expect(changed.rowCount).toBe(1);
      await client.query("SET session_replication_role = 'origin'");
    } finally {
      client.release();
    }
    await write();
    const bad = await checkReadingsCsv(doc, csv);
    expect(bad.ok).toBe(false);
    // The leaf index of the victim, from the export: line number - 2 (header, 0-based).
    const lines = (await readFile(csv, 'utf8')).split('\n');
    const index =
      lines.findIndex((l) => l.startsWith(`${victim.deviceId},${fx.unitId},${victim.ts},`)) - 1;
    expect(index).toBeGreaterThanOrEqual(0);
    expect(bad.firstBadChunk!.fromLeaf).toBeLessThanOrEqual(index);
    expect(bad.firstBadChunk!.toLeaf).toBeGreaterThanOrEqual(index);
    expect(bad.firstBadChunk!.toLeaf - bad.firstBadChunk!.fromLeaf).toBeLessThan(
      doc.report.merkle.chunkSize,
    );
    expect(bad.problems.join('\n')).toMatch(/reproduce|root/);
  });

  it('an inclusion proof of a reading verifies offline; a forged one does not', async () => {
    const proof = await mrv.prove(doc.report.id, fx.otherDeviceId, '2026-10-01T05:00:00.000000Z');
    expect(checkProof(doc, proof, decodeProofReading)).toEqual([]);
    const proofFile = path.join(dir, 'proof.json');
    await writeFile(proofFile, JSON.stringify(proof));
    const files = await verifyReportFiles({
      report: reportFile,
      proof: proofFile,
      publicKey: path.join(dir, MRV_PUBLIC_KEY_FILE),
    });
    expect(files.proof).toEqual({ ok: true, leafIndex: proof.leafIndex, problems: [] });

    const forgedValue = structuredClone(proof);
    forgedValue.reading.values.h2s_ppm = 1;
    expect(checkProof(doc, forgedValue, decodeProofReading).join()).toMatch(
      /not the canonical encoding|does not lead/,
    );
    // Re-encoded consistently, the forged leaf still has no path to the signed root.
    const { encodeReading } = await import('./mrv-encoding.ts');
    forgedValue.leaf = encodeReading(decodeProofReading(forgedValue.reading)).toString('hex');
    expect(checkProof(doc, forgedValue, decodeProofReading).join()).toMatch(/does not lead/);
    const forgedPath = structuredClone(proof);
    forgedPath.path[0] = forgedPath.path[0]!.replace(/^./, (c) => (c === 'f' ? '0' : 'f'));
    expect(checkProof(doc, forgedPath, decodeProofReading).join()).toMatch(/does not lead/);
    const otherIndex = structuredClone(proof);
    otherIndex.leafIndex += 1;
    expect(checkProof(doc, otherIndex, decodeProofReading)).not.toEqual([]);

    await expect(
      mrv.prove(doc.report.id, fx.deviceId, '2026-10-10T12:00:00Z'),
    ).rejects.toMatchObject({ code: 'MRV_READING_NOT_IN_REPORT' });
    expect(microsToIso(isoToMicros(proof.reading.ts))).toBe(proof.reading.ts);
  });

  it('keeps issued reports immutable; a correction is a new version naming the one it supersedes and why', async () => {
    await expect(
      t.database.pool.query('UPDATE mrv_reports SET document = $1 WHERE id = $2', [
        '{}',
        doc.report.id,
      ]),
    ).rejects.toMatchObject({ code: '42501' });
    await expect(
      t.database.pool.query('DELETE FROM mrv_reports WHERE id = $1', [doc.report.id]),
    ).rejects.toMatchObject({ code: '42501' });
    // Its leaf hashes reference it (0032): a plain TRUNCATE is refused for that, CASCADE by the triggers.
    await expect(t.database.pool.query('TRUNCATE mrv_reports')).rejects.toThrow();
    await expect(t.database.pool.query('TRUNCATE mrv_reports CASCADE')).rejects.toMatchObject({
      code: '42501',
    });
    await expect(
      mrv.issue({ unit: fx.unitId, ...monthPeriod('2026-10'), actor }),
    ).rejects.toMatchObject({ code: 'MRV_ALREADY_ISSUED' });
    const v2 = await mrv.issue({
      unit: fx.unitId,
      ...monthPeriod('2026-10'),
      actor,
      reason: 'flow meter recalibrated: certificate K-2026-114 corrected',
    });
    const d2 = parseReportDocument(v2.document);
    corrected = d2;
    expect(d2.report).toMatchObject({
      version: 2,
      supersedes: doc.report.id,
      supersedeReason: expect.stringContaining('recalibrated'),
    });
    const list = await mrv.list(fx.unitId);
    expect(list.map((r) => r.version)).toEqual([2, 1]);
    expect(await mrv.download(doc.report.id, actor)).toBe(await readFile(reportFile, 'utf8'));
    const audited = await t.database.pool.query<{ action: string; n: number }>(
      "SELECT action, count(*)::int AS n FROM audit_log WHERE target_type = 'mrv_report' GROUP BY action ORDER BY action",
    );
    expect(audited.rows).toEqual([
      { action: 'mrv.report_download', n: 3 },
      { action: 'mrv.report_issue', n: 2 },
    ]);
  });
});

describe('retention', () => {
  it('raw retention removes the month from readings, and the report still reproduces from the archive', async () => {
    const { expireRawReadings, timeseriesInfo } = await import('../db/timeseries.ts');
    const expired = await expireRawReadings(
      t.database.pool,
      (await timeseriesInfo(t.database.pool)).mode,
      new Date('2026-11-08T00:00:00Z'),
    );
    expect(expired.length).toBeGreaterThan(0);
    const left = await t.database.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM readings WHERE ts < '2026-11-01'",
    );
    expect(left.rows[0]!.n).toBe(0);
    // The correction (v2) from the archive: what a verifier gets years later reproduces its root.
    const csv = path.join(dir, 'after-retention.csv');
    let text = '';
    for await (const line of mrv.exportReadings(corrected.report.id, actor)) text += line;
    await writeFile(csv, text);
    expect(await checkReadingsCsv(corrected, csv)).toMatchObject({
      ok: true,
      leaves: corrected.report.merkle.size,
      problems: [],
    });
    expect(corrected.report.merkle.size).toBe(doc.report.merkle.size);
    const proof = await mrv.prove(doc.report.id, fx.deviceId, '2026-10-02T08:15:00Z');
    expect(checkProof(doc, proof, decodeProofReading)).toEqual([]);
  });
});
