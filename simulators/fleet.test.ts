import { readFileSync } from 'node:fs';
import path from 'node:path';
import { tryConnect } from '../test/broker-fixture.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { startGateway, type Gateway } from '../test/gateway.ts';
import { httpsRequest } from '../test/https-client.ts';
import { createApiClient } from './api-client.ts';
import { faultNames, missingFromReadings, runFleet, type FleetReport } from './fleet.ts';
import type { DeviceIdentity } from './device.ts';

let t: TestDatabase;
let report: FleetReport;
let stateDir: string;
let mqttPort: number;
let ca: string;
let gateway: Gateway | undefined;

beforeAll(async () => {
  t = await createTestDatabase();
  gateway = await startGateway({ database: t.name });
  ca = gateway.ca;
  mqttPort = Number(new URL(gateway.mqttUrl).port);
  const { token } = JSON.parse(
    await gateway.cli(['user', 'token', 'fleet-test', '--role', 'technician', '--json']),
  ) as { token: string };
  const dataDir = gateway.dataDir;
  stateDir = path.join(dataDir, 'sim');
  report = await runFleet(
    {
      digesters: 10,
      collectionPoints: 10,
      durationMs: 30_000,
      // 10 configured seconds, 2 s of real time (the unit defaults every device applies).
      intervalS: 10,
      secondMs: 200,
      speed: 60,
      seed: 7,
      stateDir,
      site: 'Fleet Test School',
      mqttUrl: `mqtts://localhost:${mqttPort}`,
      ca,
      api: createApiClient({ baseUrl: gateway.apiUrl, token, ca }),
      faults: new Set(faultNames),
      checkStored: missingFromReadings(t.database.pool),
    },
    new Promise(() => undefined),
  );
  // A gateway start and a 30 s fleet run: minutes on a loaded machine. A hang detector, not a budget.
}, 400_000);

afterAll(() => {
  gateway?.stop();
});

describe('a simulated fleet with faults, through the whole chain', () => {
  it('ran on a gateway whose database, ingest role and broker were all ready', async () => {
    const res = await httpsRequest(`${gateway!.apiUrl}/readyz`, { ca });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({
      ready: true,
      checks: {
        database: true,
        ingest: true,
        broker: true,
        'device-events': true,
        'cluster-bus': true,
      },
    });
  });

  it('had every acknowledged reading stored', () => {
    expect(report.devices).toBe(20);
    expect(report.acknowledged).toBeGreaterThan(100);
    expect(report.missingFromDatabase).toBe(0);
  });

  it('has every injected bad reading in quarantine with the right reason', async () => {
    const { rows } = await t.database.pool.query<{ device_id: string; code: string }>(
      `SELECT device_id, reasons->0->>'code' AS code FROM quarantine ORDER BY id`,
    );
    const expected = {
      malformed: 'MALFORMED_JSON',
      'out-of-range': 'OUT_OF_RANGE',
      'clock-skew': 'TS_FUTURE',
    } as const;
    for (const [fault, code] of Object.entries(expected)) {
      expect(rows, fault).toContainEqual({ device_id: report.faultsInjected[fault], code });
    }
    expect(report.rejectedByReason).toMatchObject({
      MALFORMED_JSON: 1,
      OUT_OF_RANGE: 1,
      TS_FUTURE: 1,
    });
  });

  it('refused and audited the cross-topic publish and the oversized packet', async () => {
    const [from, to] = report.faultsInjected['cross-topic']!.split(' → ');
    const { rows } = await t.database.pool.query<{
      actor_id: string;
      target_id: string;
      action: string;
    }>(`SELECT actor_id, target_id, action FROM audit_log WHERE action LIKE 'security.%'`);
    expect(rows).toContainEqual({
      actor_id: `device:${from}`,
      target_id: `devices/${to}/telemetry`,
      action: 'security.publish_denied',
    });
    expect(rows).toContainEqual(
      expect.objectContaining({
        actor_id: `device:${report.faultsInjected.oversized}`,
        action: 'security.packet_rejected',
      }),
    );
    const stored = await t.database.pool.query(
      `SELECT count(*)::int AS n FROM readings WHERE device_id = $1 AND seq = 1 AND battery_v = 3.9 AND temperature_c IS NULL`,
      [to],
    );
    expect(stored.rows[0].n).toBe(0);
  });

  it('cut off the device whose certificate was revoked, and it cannot come back', async () => {
    const revoked = report.faultsInjected.revoke!;
    expect(report.connected).toBe(19);
    const { rows } = await t.database.pool.query(`SELECT online FROM devices WHERE id = $1`, [
      revoked,
    ]);
    expect(rows[0].online).toBe(false);
    const identity = JSON.parse(
      readFileSync(path.join(stateDir, revoked, 'identity.json'), 'utf8'),
    ) as DeviceIdentity;
    const outcome = await tryConnect(`mqtts://localhost:${mqttPort}`, {
      key: identity.key,
      cert: identity.cert,
      ca,
      clientId: revoked,
      protocolVersion: 4,
      connectTimeout: 5000,
    }).then(
      async (c) => {
        await c.endAsync(true);
        return 'connected';
      },
      () => 'refused',
    );
    expect(outcome).toBe('refused');
  });
});
