import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../audit/index.ts';
import { versionAt } from '../device-config/config-fns.ts';
import type { DeviceConfigRuntime } from '../device-config/index.ts';
import { startDevice } from '../simulators/device.ts';
import { mulberry32 } from '../simulators/random.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import type { BrokerFixture } from '../test/broker-fixture.ts';
import { startDeviceConfigFixture } from '../test/device-config-fixture.ts';
import { waitFor } from '../test/wait.ts';
import { createMrvRepo, createMrvService, mrvSignerFromKey } from './index.ts';
import type { CalibrationUse } from './calibration-fns.ts';
import { parseReportDocument } from './mrv-report-fns.ts';

/**
 * Calibration in the report (issues 20, 21): a real simulated digester, through the real broker
 * and ingest, has its flow calibration changed mid-period by a technician; the report lists the
 * device's calibration spans (version, offset and gain per metric, from/to) and attributes each
 * reading to the version that produced it, as the device itself recorded.
 */

let f: BrokerFixture;
let rt: DeviceConfigRuntime;
const tech = { actorId: 'tech-1', actorRole: 'technician' };
const actor = { actorId: 'cli:test', actorRole: 'admin' };
const SECOND_MS = 20;

let fixture: Awaited<ReturnType<typeof startDeviceConfigFixture>> | undefined;
beforeAll(async () => {
  fixture = await startDeviceConfigFixture();
  ({ f, rt } = fixture);
});
afterAll(() => fixture?.close());

const stored = async (id: string) =>
  (
    await f.t.database.pool.query<{ ts: Date; flow: number }>(
      'SELECT ts, gas_flow_lpm AS flow FROM readings WHERE device_id = $1 ORDER BY ts',
      [id],
    )
  ).rows;

describe('calibration versions in an MRV report', () => {
  it('lists each calibration span of the device and counts the readings each version produced', async () => {
    const id = 'bd-mrv-cal';
    const start = new Date(Date.now() - 60_000);
    const cert = await f.addDevice(id);
    await rt.config.setOverrides(id, { reportingIntervalS: 10 }, tech);
    const device = await startDevice({
      identity: { id, kind: 'biodigester', key: cert.key, cert: cert.cert, serial: cert.serialHex },
      dir: mkdtempSync(path.join(os.tmpdir(), 'thamani-mrv-cal-')),
      url: `mqtts://localhost:${f.port}`,
      ca: f.caPem,
      rand: mulberry32(3),
      sample: () => ({ gas_flow_lpm: 20, methane_pct: 60 }),
      secondMs: SECOND_MS,
    });
    const inSync = (v: number) =>
      waitFor(
        `in sync at ${v}`,
        () => rt.config.get(id),
        (c) => c.status === 'in_sync' && c.reportedVersion === v,
      );
    await inSync(1);
    await waitFor(
      'five readings',
      () => stored(id),
      (r) => r.length >= 5,
    );
    await rt.config.setOverrides(
      id,
      { calibration: { gas_flow_lpm: { offset: 1, gain: 1.1 } } },
      tech,
    );
    await inSync(2);
    const v2From = (
      await rt.config.calibrationHistory(id, new Date(0), new Date(Date.now() + 1))
    )[1]!.from;
    await waitFor(
      'five readings with version 2',
      () => stored(id),
      (r) => r.filter((x) => x.ts >= v2From).length >= 5,
    );
    device.stopSampling();
    await waitFor(
      'every reading stored',
      () => stored(id),
      (r) => r.length === device.producedBy.size,
    );
    await device.stop();
    const end = new Date(Date.now() + 1000);

    const mrv = createMrvService({
      db: f.t.database.db,
      repo: createMrvRepo(),
      audit: createAuditLog({ db: f.t.database.db, signer: testAuditSigner }),
      signer: mrvSignerFromKey(generateKeyPairSync('ed25519').privateKey),
    });
    const { rows } = await f.t.database.pool.query<{ unit_id: string }>(
      'SELECT unit_id FROM devices WHERE id = $1',
      [id],
    );
    const issued = await mrv.issue({ unit: rows[0]!.unit_id, start, end, actor });
    const report = parseReportDocument(issued.document).report as unknown as {
      provenance: { calibrationVersions: CalibrationUse[] };
    };
    const spans = report.provenance.calibrationVersions.filter((s) => s.deviceId === id);
    const history = await rt.config.calibrationHistory(id, start, end);
    // Factory calibration until version 1 was applied, then 1, then 2 until the period's end.
    expect(spans.map((s) => [s.version, s.calibration])).toEqual([
      [null, null],
      [1, {}],
      [2, { gas_flow_lpm: { offset: 1, gain: 1.1 } }],
    ]);
    expect(spans[1]!.from).toBe(history[0]!.from.toISOString().replace('Z', '000Z'));
    expect(spans[2]!.from).toBe(history[1]!.from.toISOString().replace('Z', '000Z'));
    expect(spans[1]!.to).toBe(spans[2]!.from);
    // Counts per version: what the device recorded producing each reading.
    const produced = new Map<number | null, number>();
    for (const v of device.producedBy.values()) {
      const k = v === 0 ? null : v;
      produced.set(k, (produced.get(k) ?? 0) + 1);
    }
    expect(spans.map((s) => [s.version, s.readings])).toEqual(
      spans.map((s) => [s.version, produced.get(s.version) ?? 0]),
    );
    expect(spans[2]!.readings).toBeGreaterThanOrEqual(5);
    // The calibration changed the values sent: 20, then 20 × 1.1 + 1.
    const all = await stored(id);
    expect(new Set(all.filter((r) => versionAt(history, r.ts) === 2).map((r) => r.flow))).toEqual(
      new Set([20 * 1.1 + 1]),
    );
    expect(spans.reduce((a, s) => a + s.readings, 0)).toBe(all.length);
  }, 240_000);
});
