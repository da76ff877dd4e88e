import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../audit/index.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { startGateway, type Gateway } from '../test/gateway.ts';
import { waitFor } from '../test/wait.ts';
import { createDeviceConfigService } from './config-service.ts';
import { enrolBeforeGateway } from '../test/enrol-before-start.ts';

/**
 * The real `thamani start` (app/start.ts wiring): a configuration set from another process while
 * the device is away reaches it at its next subscription, and again after the gateway restarts
 * (the broker's memory is gone; PostgreSQL is not); its acknowledgement makes it in sync.
 */
let t: TestDatabase;
let gateway: Gateway | undefined;
let dataDir: string;
let device: { key: string; cert: string };
const id = 'bd-restart-1';

beforeAll(async () => {
  t = await createTestDatabase();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'thamani-cfgrestart-'));
  const passphrase = 'gateway test passphrase';
  device = await enrolBeforeGateway({
    t,
    dataDir,
    passphrase,
    deviceId: id,
    site: 'Restart Site',
    unit: 'R1',
  });
}, 150_000);

afterAll(() => gateway?.stop());

async function connect(g: Gateway) {
  const got: { version: number; config: { reportingIntervalS: number } }[] = [];
  const c = await waitFor('the MQTT listener', () =>
    mqtt
      .connectAsync(g.mqttUrl, {
        key: device.key,
        cert: device.cert,
        ca: g.ca,
        clientId: id,
        protocolVersion: 4,
        reconnectPeriod: 0,
        clean: true,
      })
      .catch(() => undefined),
  );
  c!.on('message', (topic, payload) => {
    if (topic.endsWith('/config')) got.push(JSON.parse(payload.toString()) as (typeof got)[number]);
  });
  await c!.subscribeAsync(`devices/${id}/config`, { qos: 1 });
  return { c: c!, got };
}

describe('configuration across gateway restarts', () => {
  it('is sent from PostgreSQL at every subscription, set from another process, acknowledged into sync', async () => {
    // Another process (the CLI, the API) sets it before the gateway even runs.
    const svc = createDeviceConfigService({
      db: t.database.db,
      audit: createAuditLog({ db: t.database.db, signer: testAuditSigner }),
    });
    await svc.setOverrides(
      id,
      { reportingIntervalS: 45 },
      { actorId: 'cli:test', actorRole: 'admin' },
    );

    gateway = await startGateway({ database: t.name, dataDir, readyTimeoutMs: 120_000 });
    let d = await connect(gateway);
    await waitFor(
      'version 1',
      () => d.got.at(-1)?.version,
      (v) => v === 1,
    );
    expect(d.got.at(-1)!.config.reportingIntervalS).toBe(45);
    // A change committed elsewhere reaches the connected device (pg_notify).
    await svc.setOverrides(
      id,
      { reportingIntervalS: 30 },
      { actorId: 'cli:test', actorRole: 'admin' },
    );
    await waitFor(
      'version 2',
      () => d.got.at(-1)?.version,
      (v) => v === 2,
    );
    await d.c.endAsync();

    gateway.stop();
    await waitFor(
      'the gateway to exit',
      () => gateway!.exit(),
      (e) => e !== undefined,
      120_000,
    );
    gateway = await startGateway({ database: t.name, dataDir, readyTimeoutMs: 120_000 });
    d = await connect(gateway);
    await waitFor(
      'version 2 after the restart',
      () => d.got.at(-1)?.version,
      (v) => v === 2,
    );
    await d.c.publishAsync(
      `devices/${id}/config/reported`,
      JSON.stringify({ version: 2, status: 'applied', appliedAt: new Date().toISOString() }),
      { qos: 1 },
    );
    expect(await svc.get(id)).toMatchObject({ status: 'in_sync', reportedVersion: 2 });
    await d.c.endAsync();
  }, 600_000);
});
