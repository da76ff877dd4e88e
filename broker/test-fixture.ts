import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { createAuditLog } from '../audit/index.ts';
import { devices, sites, units } from '../db/schema/index.ts';
import { createTestDatabase, testLogger, type TestDatabase } from '../test/db.ts';
import { createForeignCa, type IssuedCert } from '../test/forge-ca.ts';
import { createBroker, type Broker, type BrokerConfig } from './broker-service.ts';
import type { ConnectionIdentity } from './identity-fns.ts';
import { createPresence } from './presence.ts';
import { createSecurityEvents } from './security-events.ts';
import type { DeviceSession, UpstreamPublish } from './types.ts';

export { requireTool } from '../test/tools.ts';

/**
 * Runs a command without blocking the event loop (the broker under test lives in this process,
 * so spawnSync would deadlock it).
 */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 10_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * Connects with MQTT.js and settles on the first outcome: connected, a CONNACK refusal, a TLS
 * error, or the server closing the socket before CONNACK (TLS 1.3 reports a refused client
 * certificate after the client's handshake has finished).
 */
export function tryConnect(url: string, opts: mqtt.IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { ...opts, reconnectPeriod: 0 });
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
    client.once('close', () => {
      client.end(true);
      reject(Object.assign(new Error('closed before CONNACK'), { code: 'CLOSED' }));
    });
  });
}

export const testBrokerConfig: BrokerConfig = {
  host: '127.0.0.1',
  port: 0,
  maxPacketBytes: 64 * 1024,
  maxConnections: 1000,
  connectTimeoutMs: 5000,
  keepaliveMinSeconds: 5,
  keepaliveMaxSeconds: 600,
  maxClientIdLength: 64,
  ratePerSecond: 1000,
  rateBurst: 1000,
  rateMaxWaitMs: 60_000,
  revalidateIntervalMs: 60_000,
};

export interface BrokerFixture {
  t: TestDatabase;
  broker: Broker;
  port: number;
  caPem: string;
  received: { session: DeviceSession; message: UpstreamPublish }[];
  /** Registers a device on a unit and issues it a certificate from the broker's CA. */
  addDevice(id: string, opts?: { status?: 'pending' | 'active' | 'suspended' | 'retired'; notAfter?: Date; notBefore?: Date }): Promise<IssuedCert>;
  revoke(serialHex: string): void;
  setStatus(deviceId: string, status: 'suspended' | 'retired' | 'active'): Promise<void>;
  connect(cert: IssuedCert, opts?: mqtt.IClientOptions): Promise<MqttClient>;
  files(cert: IssuedCert): { ca: string; cert: string; key: string };
  close(): Promise<void>;
}

export async function startBrokerFixture(config: Partial<BrokerConfig> = {}): Promise<BrokerFixture> {
  const t = await createTestDatabase();
  const ca = createForeignCa('Thamani Test Issuing CA');
  const server = ca.issue({ cn: 'localhost', usage: 'serverAuth', dnsNames: ['localhost', '127.0.0.1'] });
  const [site] = await t.database.db.insert(sites).values({ name: `site-${Math.random()}` }).returning();
  const [unit] = await t.database.db.insert(units).values({ siteId: site!.id, kind: 'biodigester', name: 'D1' }).returning();
  const certs = new Map<string, { deviceId: string; status: string; notAfter: Date }>();
  const events = new EventEmitter();
  const received: BrokerFixture['received'] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'thamani-broker-'));

  const identity = {
    async connectionIdentity(serial: string): Promise<ConnectionIdentity | undefined> {
      const c = certs.get(serial);
      if (!c) return undefined;
      const [d] = await t.database.pool.query<{ id: string; unit_id: string; status: ConnectionIdentity['deviceStatus'] }>(`SELECT id, unit_id, status FROM devices WHERE id = $1`, [c.deviceId]).then((r) => r.rows);
      return d ? { deviceId: d.id, unitId: d.unit_id, kind: 'biodigester', deviceStatus: d.status, certStatus: c.status, notAfter: c.notAfter } : undefined;
    },
    async markConnected(deviceId: string): Promise<void> {
      await t.database.pool.query(`UPDATE devices SET status = 'active' WHERE id = $1 AND status = 'pending'`, [deviceId]);
    },
  };

  const broker = await createBroker({
    config: { ...testBrokerConfig, ...config },
    logger: testLogger,
    tls: { key: server.key, cert: server.cert, ca: [ca.caPem] },
    identity,
    events,
    securityEvents: createSecurityEvents({ audit: createAuditLog({ db: t.database.db }), logger: testLogger }),
    presence: createPresence({ pool: t.database.pool, logger: testLogger, flushMs: 200 }),
    handlers: {
      telemetry: (session, message) => {
        received.push({ session, message });
        return Promise.resolve();
      },
      state: () => Promise.resolve(),
    },
  });
  const { port } = await broker.listen();

  return {
    t,
    broker,
    port,
    caPem: ca.caPem,
    received,
    async addDevice(id, opts = {}) {
      await t.database.db.insert(devices).values({ id, unitId: unit!.id, kind: 'biodigester', status: opts.status ?? 'active' });
      const cert = ca.issue({ cn: id, ...(opts.notAfter ? { notAfter: opts.notAfter } : {}), ...(opts.notBefore ? { notBefore: opts.notBefore } : {}) });
      certs.set(cert.serialHex, { deviceId: id, status: 'active', notAfter: opts.notAfter ?? new Date(Date.now() + 30 * 86_400_000) });
      return cert;
    },
    revoke(serialHex) {
      const c = certs.get(serialHex);
      if (c) c.status = 'revoked';
      events.emit('certificate_revoked', { serial: serialHex, deviceId: c?.deviceId });
    },
    async setStatus(deviceId, status) {
      await t.database.pool.query(`UPDATE devices SET status = $2 WHERE id = $1`, [deviceId, status]);
      events.emit('device_status', { deviceId, status });
    },
    connect(cert, opts = {}) {
      return tryConnect(`mqtts://127.0.0.1:${port}`, {
        key: cert.key,
        cert: cert.cert,
        ca: ca.caPem,
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 5000,
        keepalive: 30,
        ...opts,
      });
    },
    files(cert) {
      const base = path.join(dir, cert.serialHex);
      writeFileSync(`${base}.ca.pem`, ca.caPem);
      writeFileSync(`${base}.cert.pem`, cert.cert);
      writeFileSync(`${base}.key.pem`, cert.key, { mode: 0o600 });
      return { ca: `${base}.ca.pem`, cert: `${base}.cert.pem`, key: `${base}.key.pem` };
    },
    async close() {
      await broker.close();
    },
  };
}
