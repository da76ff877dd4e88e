import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calibrationHistory, versionAt } from '../device-config/index.ts';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { startGateway, type Gateway } from '../test/gateway.ts';
import { waitFor } from '../test/wait.ts';
import { createApiClient } from './api-client.ts';
import { missingFromReadings, runFleet, type FleetReport } from './fleet.ts';

/**
 * A `thamani simulate` fleet honours remote configuration device by device: the real gateway
 * (`thamani start`), a real fleet run, a technician's `thamani device config set` for one
 * device of it. Readings are stamped with their scheduled instants (as a device's RTC alarm
 * does), so the gaps between stored readings are the interval in force exactly, however slowly
 * this machine runs.
 */

/** Real ms per configured second: the fleet's 20 s interval is 2 s here, 5 s is 0.5 s. */
const SECOND_MS = 100;
const FLEET_INTERVAL_S = 20;
const CHANGED_INTERVAL_S = 5;
const CHANGED = 'bd-sim-001';

let t: TestDatabase;
let gateway: Gateway | undefined;
let report: FleetReport;
/** The version each device ran at the fleet's interval. */
const base = new Map<string, number>();
const DEVICES = ['bd-sim-001', 'bd-sim-002', 'cp-sim-001'];

async function stored(id: string): Promise<Date[]> {
  const { rows } = await t.database.pool.query<{ ts: Date }>(
    `SELECT ts FROM readings WHERE device_id = $1 ORDER BY ts`,
    [id],
  );
  return rows.map((r) => r.ts);
}

interface DeviceConfigView {
  status: string;
  desiredVersion: number;
  reportedVersion: number | null;
  desired: { reportingIntervalS: number };
}

const configOf = async (id: string): Promise<DeviceConfigView> =>
  (
    JSON.parse(await gateway!.cli(['device', 'config', 'get', id, '--json'])) as {
      config: DeviceConfigView;
    }
  ).config;

/** The device's configuration, or undefined while the fleet has not registered it yet. */
const configOnceRegistered = (id: string): Promise<DeviceConfigView | undefined> =>
  configOf(id).catch((err: Error) => {
    if (err.message.includes('CONFIG_DEVICE_NOT_FOUND')) return undefined;
    throw err;
  });

/** Gaps (ms) between consecutive stored readings both made with `version` of the device's configuration. */
async function gapsAt(id: string, version: number): Promise<number[]> {
  const history = await calibrationHistory(
    t.database.pool,
    id,
    new Date(0),
    new Date(Date.now() + 60_000),
  );
  const ts = await stored(id);
  return ts
    .map((x, i) => ({ x, prev: ts[i - 1] }))
    .filter(
      ({ x, prev }) =>
        prev && versionAt(history, x) === version && versionAt(history, prev) === version,
    )
    .map(({ x, prev }) => x.getTime() - prev!.getTime());
}

beforeAll(async () => {
  t = await createTestDatabase();
  gateway = await startGateway({ database: t.name });
  const { token } = JSON.parse(
    await gateway.cli(['user', 'token', 'fleet-cfg', '--role', 'technician', '--json']),
  ) as { token: string };
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((r) => (stop = r));
  const run = runFleet(
    {
      digesters: 2,
      collectionPoints: 1,
      durationMs: undefined,
      intervalS: FLEET_INTERVAL_S,
      secondMs: SECOND_MS,
      speed: 60,
      seed: 3,
      stateDir: path.join(gateway.dataDir, 'sim'),
      site: 'Fleet Config School',
      mqttUrl: `mqtts://localhost:${new URL(gateway.mqttUrl).port}`,
      ca: gateway.ca,
      api: createApiClient({ baseUrl: gateway.apiUrl, token, ca: gateway.ca }),
      faults: new Set(),
      checkStored: missingFromReadings(t.database.pool),
    },
    stopped,
  );
  try {
    for (const id of DEVICES) {
      const c = (await waitFor(
        `${id} in sync`,
        () => configOnceRegistered(id),
        (x) => x?.status === 'in_sync',
        240_000,
      )) as DeviceConfigView; // in sync: registered
      base.set(id, c.desiredVersion);
      await waitFor(
        `${id} with three readings at the fleet's interval`,
        () => gapsAt(id, c.desiredVersion),
        (g) => g.length >= 2,
        240_000,
      );
    }
    // A technician changes one device of the running fleet.
    await gateway.cli([
      'device',
      'config',
      'set',
      CHANGED,
      `reportingIntervalS=${CHANGED_INTERVAL_S}`,
    ]);
    await waitFor(
      `${CHANGED} in sync at its next version`,
      () => configOf(CHANGED),
      (c) => c.status === 'in_sync' && c.reportedVersion === base.get(CHANGED)! + 1,
      240_000,
    );
    await waitFor(
      `${CHANGED}: six readings at its new interval`,
      () => gapsAt(CHANGED, base.get(CHANGED)! + 1),
      (g) => g.length >= 5,
      240_000,
    );
  } finally {
    stop();
    report = await run;
  }
}, 900_000);

afterAll(() => {
  gateway?.stop();
});

describe('a simulated fleet and remote configuration', () => {
  it("reads at the fleet's interval, which reached every device as desired configuration (unit defaults)", async () => {
    for (const id of DEVICES) {
      expect(new Set(await gapsAt(id, base.get(id)!)), id).toEqual(
        new Set([FLEET_INTERVAL_S * SECOND_MS]),
      );
      expect((await configOf(id)).desired.reportingIntervalS).toBe(
        id === CHANGED ? CHANGED_INTERVAL_S : FLEET_INTERVAL_S,
      );
    }
  });

  it('changes the reading rate of the one device whose interval a technician changed, and only its', async () => {
    expect(new Set(await gapsAt(CHANGED, base.get(CHANGED)! + 1))).toEqual(
      new Set([CHANGED_INTERVAL_S * SECOND_MS]),
    );
    for (const id of ['bd-sim-002', 'cp-sim-001']) {
      const c = await configOf(id);
      expect([id, c.desiredVersion, c.reportedVersion]).toEqual([id, base.get(id), base.get(id)]);
    }
  });

  it('stored every reading it had acknowledged', () => {
    expect(report.devices).toBe(3);
    expect(report.missingFromDatabase).toBe(0);
  });
});
