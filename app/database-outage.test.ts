import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../audit/index.ts';
import { createDatabase, type Database } from '../db/client.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { createPki, loadOrCreateCa } from '../provisioning/index.ts';
import { testLogger } from '../test/db.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { deviceKeyAndCsr } from '../test/device-keys.ts';
import { startGateway, type Gateway } from '../test/gateway.ts';
import { httpsRequest } from '../test/https-client.ts';

/**
 * Issue 16 §6: the database dies under load, the gateway lives. The real `thamani start` with
 * its own embedded PostgreSQL (supervised), real mTLS devices publishing QoS 1; the postmaster
 * is SIGKILLed and cannot start again until the test lets it (a line PostgreSQL refuses in
 * postgresql.conf), so the outage lasts as long as the test needs to observe it, on any machine.
 */

const DEVICES = ['bd-out-1', 'bd-out-2', 'bd-out-3'];
const WINDOW = 10;

async function waitFor(
  what: string,
  probe: () => Promise<boolean> | boolean,
  gw: Gateway,
  timeoutMs = 180_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (gw.exit())
      throw new Error(
        `gateway exited while waiting for ${what}: ${JSON.stringify(gw.exit())}\n${gw.log().slice(-4000)}`,
      );
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}\n${gw.log().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

interface Sender {
  id: string;
  client: mqtt.MqttClient;
  acked: Set<number>;
  connackCodes: number[];
  inFlight: () => number;
  stop(): void;
}

/** A device publishing QoS 1 readings (seq 1, 2, …) at about 10/s, at most WINDOW unacknowledged. */
function send(gw: Gateway, id: string, creds: { key: string; cert: string }): Sender {
  const client = mqtt.connect(gw.mqttUrl, {
    key: creds.key,
    cert: creds.cert,
    ca: gw.ca,
    clientId: id,
    protocolVersion: 4,
    clean: false,
    reconnectPeriod: 300,
    connectTimeout: 10_000,
    keepalive: 30,
    // CONNACK 3 (server unavailable) means "try again later" (docs/device-contract.md).
    reconnectOnConnackError: true,
  });
  const acked = new Set<number>();
  const connackCodes: number[] = [];
  client.on('connect', () => connackCodes.push(0));
  client.on('error', (err) => {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number') connackCodes.push(code);
  });
  let seq = 0;
  let inFlight = 0;
  const base = Date.now() - 3_600_000;
  const timer = setInterval(() => {
    if (!client.connected || inFlight >= WINDOW) return;
    const s = ++seq;
    inFlight++;
    client.publish(
      `devices/${id}/telemetry`,
      JSON.stringify({
        seq: s,
        ts: new Date(base + s * 1000).toISOString(),
        readings: { ph: 7, temperature_c: 35 },
      }),
      { qos: 1 },
      (err) => {
        inFlight--;
        if (!err) acked.add(s);
      },
    );
  }, 100);
  return {
    id,
    client,
    acked,
    connackCodes,
    inFlight: () => inFlight,
    stop: () => clearInterval(timer),
  };
}

const BROKEN = "shared_buffers = 'not a size'\n";

describe('the database dies, the gateway lives', () => {
  let gw: Gateway;
  let db: Database;
  const senders: Sender[] = [];

  /** Log messages seen so far (the log's tail would lose them among the retries' warnings). */
  const seen = new Set<string>();
  beforeAll(async () => {
    // A publish not committed within 3 s is refused (the connection closes): the outage below
    // outlasts it, so devices also reconnect while the database is down.
    gw = await startGateway({
      database: 'embedded',
      env: { LOG_LEVEL: 'info', INGEST_COMMIT_TIMEOUT_MS: '3000' },
      readyTimeoutMs: 180_000,
    });
    let partial = '';
    gw.onLog((chunk) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const l of lines) {
        const m = /"msg":"([^"]*)"/.exec(l);
        if (m) seen.add(m[1]!);
      }
    });
    const pgPort = gw.env.EMBEDDED_PG_PORT!;
    const password = (await readFile(path.join(gw.dataDir, 'pg-password'), 'utf8')).trim();
    db = createDatabase({
      url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${pgPort}/postgres`,
      poolMax: 2,
      logger: testLogger,
    });
    const passphrase = gw.env.PKI_PASSPHRASE!;
    const ca = await loadOrCreateCa({
      dir: path.join(gw.dataDir, 'pki'),
      passphrase,
      serverNames: ['localhost'],
      serverCertDays: 30,
      logger: testLogger,
    });
    const audit = createAuditLog({ db: db.db, signer: testAuditSigner });
    const devices = createDeviceService({ db: db.db, audit });
    const pki = createPki({
      db: db.db,
      ca,
      audit,
      config: {
        passphrase,
        dir: gw.dataDir,
        deviceCertDays: 30,
        serverCertDays: 30,
        enrolmentTokenHours: 1,
        renewalWindowDays: 1,
        rotationOverlapHours: 1,
      },
      brokerUrl: '',
    });
    const actor = { actorId: 'test', actorRole: 'admin' };
    const site = await devices.addSite({ name: 'Outage Site' }, actor);
    const unit = await devices.addUnit({ site: site.id, kind: 'biodigester', name: 'D1' }, actor);
    for (const id of DEVICES) {
      await devices.addDevice({ id, unit: unit.id }, actor);
      const keys = deviceKeyAndCsr(id);
      const issued = await pki.issueFromCsr(id, keys.csr, actor);
      senders.push(send(gw, id, { key: keys.key, cert: issued.certificate }));
    }
  }, 300_000);

  afterAll(async () => {
    for (const s of senders) {
      s.stop();
      s.client.end(true);
    }
    await db?.close().catch(() => undefined);
    if (gw && !gw.exit()) gw.stop();
  });

  it('stops acknowledging, reports not ready, restarts its database, resumes by itself and loses no acknowledged reading', async () => {
    const readyz = async (): Promise<{ status: number; checks: Record<string, boolean> }> => {
      const r = await httpsRequest(`${gw.apiUrl}/readyz`, { ca: gw.ca });
      return {
        status: r.status,
        checks: (JSON.parse(r.body) as { checks: Record<string, boolean> }).checks,
      };
    };
    const acked = (): number => senders.reduce((n, s) => n + s.acked.size, 0);
    await waitFor(
      'readings acknowledged from every device',
      () => senders.every((s) => s.acked.size >= 20),
      gw,
    );

    // The outage: the postmaster is killed, and cannot start again until postgresql.conf is fixed.
    const pgDir = path.join(gw.dataDir, 'pg');
    const conf = path.join(pgDir, 'postgresql.conf');
    const original = await readFile(conf, 'utf8');
    await appendFile(conf, BROKEN);
    const before = Number(
      (await readFile(path.join(pgDir, 'postmaster.pid'), 'utf8')).split('\n')[0],
    );
    process.kill(before, 'SIGKILL');
    await waitFor('the postmaster to be gone', () => !alive(before), gw);

    // Not ready, naming what fails; devices reconnecting meanwhile are told "server unavailable".
    let down: { status: number; checks: Record<string, boolean> } | undefined;
    await waitFor(
      '/readyz 503',
      async () => {
        down = await readyz().catch(() => undefined);
        return down?.status === 503;
      },
      gw,
    );
    expect(down!.checks).toMatchObject({ database: false, ingest: false });
    await waitFor(
      'a CONNACK 3 (server unavailable) while the database is down',
      () => senders.some((s) => s.connackCodes.includes(3)),
      gw,
    );
    const ackedInOutage = acked();
    await waitFor(
      'a failed restart attempt',
      () => seen.has('embedded PostgreSQL restart failed'),
      gw,
    );
    // Nothing can commit now: nothing is acknowledged.
    expect(acked()).toBe(ackedInOutage);
    expect(senders.flatMap((s) => s.connackCodes).filter((c) => c !== 0 && c !== 3)).toEqual([]);

    // The server may start again: the supervisor's next attempt brings it back.
    await writeFile(conf, original);
    await waitFor(
      '/readyz 200',
      async () => (await readyz().catch(() => undefined))?.status === 200,
      gw,
    );
    const resumedFrom = senders.map((s) => s.acked.size);
    await waitFor(
      'ingestion to resume on every device',
      () => senders.every((s, i) => s.acked.size >= resumedFrom[i]! + 20),
      gw,
    );
    for (const s of senders) s.stop();
    await waitFor(
      'the last publishes to settle',
      () => senders.every((s) => s.inFlight() === 0),
      gw,
      60_000,
    );

    expect(gw.exit()).toBeUndefined();
    const after = Number(
      (await readFile(path.join(pgDir, 'postmaster.pid'), 'utf8')).split('\n')[0],
    );
    expect(after).not.toBe(before);
    expect(seen).toContain('embedded PostgreSQL exited unexpectedly: restarting it');
    expect(seen).toContain('embedded PostgreSQL restarted');

    for (const s of senders) {
      const { rows } = await db.pool.query<{ seq: number }>(
        `SELECT seq FROM readings WHERE device_id = $1`,
        [s.id],
      );
      const stored = new Set(rows.map((r) => Number(r.seq)));
      const lost = [...s.acked].filter((seq) => !stored.has(seq));
      expect(lost, s.id).toEqual([]);
    }

    // Stopping the gateway stops its database for good.
    for (const s of senders) s.client.end(true);
    await db.close();
    gw.stop();
    const stopDeadline = Date.now() + 120_000;
    while (!gw.exit() && Date.now() < stopDeadline) await new Promise((r) => setTimeout(r, 100));
    expect(gw.exit()).toEqual({ code: 0, signal: null });
    expect(alive(after)).toBe(false);
  }, 600_000);
});
