import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { freePort, testRolePasswords } from '../test/gateway.ts';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { httpsRequest } from '../test/https-client.ts';
import { withDatabase } from '../test/global-setup.ts';
import { enrolBeforeGateway } from '../test/enrol-before-start.ts';

/** Publishes QoS 1 readings one after another (seq 1, 2, …) and records which were acknowledged. */
function loadUntilStopped(
  client: mqtt.MqttClient,
  deviceId: string,
): { acked: Set<number>; stop(): void } {
  const acked = new Set<number>();
  let running = true;
  let seq = 0;
  const base = Date.now() - 3_600_000;
  const window = 20;
  let inFlight = 0;
  const pump = (): void => {
    while (running && inFlight < window && client.connected) {
      const s = ++seq;
      inFlight++;
      client.publish(
        `devices/${deviceId}/telemetry`,
        JSON.stringify({
          seq: s,
          ts: new Date(base + s * 1000).toISOString(),
          readings: { ph: 7, temperature_c: 35 },
        }),
        { qos: 1 },
        (err) => {
          inFlight--;
          if (!err) acked.add(s);
          pump();
        },
      );
    }
  };
  pump();
  return { acked, stop: () => void (running = false) };
}

async function storedSeqs(pool: pg.Pool, deviceId: string): Promise<Set<number>> {
  const { rows } = await pool.query<{ seq: string | number }>(
    `SELECT seq FROM readings WHERE device_id = $1`,
    [deviceId],
  );
  return new Set(rows.map((r) => Number(r.seq)));
}

/**
 * What was quarantined, as "seq: CODE". Readings sent in order with unique instants have no
 * reason to be: an acknowledged one found here instead of in `readings` is the product's fault,
 * not a lost commit (this is how the failure of 2026-11-29, seq 179, is told apart now).
 */
async function quarantined(pool: pg.Pool, deviceId: string): Promise<string[]> {
  const { rows } = await pool.query<{ seq: string | null; reasons: { code: string }[] }>(
    `SELECT seq, reasons FROM quarantine WHERE device_id = $1 ORDER BY id`,
    [deviceId],
  );
  return rows.map((r) => `${r.seq}: ${r.reasons.map((x) => x.code).join(',')}`);
}

describe('acknowledged means stored', () => {
  let f: BrokerFixture;
  beforeAll(async () => {
    f = await startBrokerFixture({}, { ingest: { commitTimeoutMs: 20_000 } });
  });
  afterAll(async () => {
    await f?.close();
  });

  it('loses no acknowledged reading when the database goes away under load and comes back', async () => {
    const cert = await f.addDevice('bd-dur-outage');
    const client = await f.connect(cert, { clientId: 'bd-dur-outage' });
    const load = loadUntilStopped(client, 'bd-dur-outage');
    await new Promise((r) => setTimeout(r, 500));
    const admin = new pg.Client({ connectionString: inject('adminUrl') });
    await admin.connect();
    // Outage: nobody may connect to this database and every open connection is killed.
    await admin.query(`ALTER DATABASE ${f.t.name} WITH ALLOW_CONNECTIONS false`);
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, [
      f.t.name,
    ]);
    const ackedAtOutage = load.acked.size;
    await new Promise((r) => setTimeout(r, 1500));
    const ackedDuringOutage = load.acked.size - ackedAtOutage;
    await admin.query(`ALTER DATABASE ${f.t.name} WITH ALLOW_CONNECTIONS true`);
    await admin.end();
    // It resumes by itself, without a restart.
    const resumedFrom = load.acked.size;
    // Generous: the condition ends the wait; the bound only catches a gateway that never resumes.
    const deadline = Date.now() + 120_000;
    while (load.acked.size < resumedFrom + 50 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    load.stop();
    await new Promise((r) => setTimeout(r, 300));
    client.end(true);
    expect(ackedDuringOutage).toBeLessThanOrEqual(20); // at most what was already committing
    expect(load.acked.size).toBeGreaterThan(resumedFrom + 49);
    const stored = await storedSeqs(f.t.database.pool, 'bd-dur-outage');
    const lost = [...load.acked].filter((s) => !stored.has(s));
    expect(await quarantined(f.t.database.pool, 'bd-dur-outage')).toEqual([]);
    expect(lost).toEqual([]);
  }, 60_000);
});

describe('SIGKILL', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });

  it('loses no acknowledged reading when the gateway process is killed mid-load', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'thamani-kill-'));
    const [mqttPort, httpsPort, httpPort, devicePort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const passphrase = 'kill test passphrase 12';
    // The device is registered and enrolled before the gateway starts, through the same CA
    // directory and database the gateway then uses.
    const enrolled = await enrolBeforeGateway({
      t,
      dataDir,
      passphrase,
      deviceId: 'bd-dur-kill',
      site: 'Kill Site',
      unit: 'D1',
    });
    const gateway = spawn(process.execPath, ['bin/thamani.js', 'start'], {
      env: {
        ...process.env,
        DATABASE_URL: withDatabase(inject('adminUrl'), t.name),
        THAMANI_DATA_DIR: dataDir,
        MQTT_PORT: String(mqttPort),
        HTTPS_PORT: String(httpsPort),
        HTTP_REDIRECT_PORT: String(httpPort),
        DEVICE_HTTPS_PORT: String(devicePort),
        MQTT_HOST: '127.0.0.1',
        HTTPS_HOST: '127.0.0.1',
        PKI_PASSPHRASE: passphrase,
        ...testRolePasswords,
        LOG_LEVEL: 'warn',
        LOG_FORMAT: 'json',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    gateway.stdout.on('data', (c: Buffer) => (log += c.toString()));
    gateway.stderr.on('data', (c: Buffer) => (log += c.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      gateway.on('exit', (_code, signal) => resolve(signal)),
    );
    const rootCa = enrolled.rootCertPem;
    // Ready when the API answers (the broker starts right after it); a loaded machine may take minutes.
    const deadline = Date.now() + 240_000;
    let ready = false;
    while (!ready && Date.now() < deadline) {
      ready = await httpsRequest(`https://localhost:${httpsPort}/healthz`, { ca: rootCa }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (!ready) await new Promise((r) => setTimeout(r, 200));
    }
    expect(ready, log).toBe(true);
    let client: mqtt.MqttClient | undefined;
    while (!client && Date.now() < deadline) {
      client = await mqtt
        .connectAsync(`mqtts://localhost:${mqttPort}`, {
          key: enrolled.key,
          cert: enrolled.cert,
          ca: rootCa,
          clientId: 'bd-dur-kill',
          protocolVersion: 4,
          reconnectPeriod: 0,
        })
        .catch(() => undefined);
      if (!client) await new Promise((r) => setTimeout(r, 200));
    }
    if (!client) throw new Error(`could not connect to the gateway:\n${log}`);
    client.on('error', () => undefined);
    const load = loadUntilStopped(client, 'bd-dur-kill');
    while (load.acked.size < 200) await new Promise((r) => setTimeout(r, 20));
    gateway.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    load.stop();
    client.end(true);
    const stored = await storedSeqs(t.database.pool, 'bd-dur-kill');
    const lost = [...load.acked].filter((s) => !stored.has(s));
    expect(await quarantined(t.database.pool, 'bd-dur-kill')).toEqual([]);
    expect(load.acked.size).toBeGreaterThanOrEqual(200);
    expect(lost).toEqual([]);
  }, 400_000);
});
