import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import mqtt, { type MqttClient } from 'mqtt';
import { openAsLoginRole } from '../app/db-roles.ts';
import { createDatabase, type Database } from '../db/client.ts';
import {
  createAuditLog,
  createSecurityEvents,
  type SecurityEvents,
  type SecurityEventsConfig,
} from '../audit/index.ts';
import { testAuditSigner } from './audit-key.ts';
import { createDeviceEvents, type DeviceEvents } from '../devices/device-events.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { loadOrCreateCa, type LoadedCa } from '../provisioning/ca-store.ts';
import { createPki, type Pki } from '../provisioning/pki-service.ts';
import { createRenewalHandler } from '../provisioning/renewal-handler.ts';
import { createIngest, type Ingest, type IngestConfig } from '../ingest/ingest-service.ts';
import type { RowIn } from '../ingest/batch-writer.ts';
import { deviceKeyAndCsr, type DeviceKeyType } from './device-keys.ts';
import { createTestDatabase, testLogger, type TestDatabase } from './db.ts';
import { createBroker, type Broker, type BrokerConfig } from '../broker/broker-service.ts';
import { createPresence } from '../broker/presence.ts';
import type { DeviceSession, UpstreamHandler, UpstreamPublish } from '../broker/types.ts';

export { requireTool } from './tools.ts';

/**
 * Runs a command without blocking the event loop (the broker under test lives in this process,
 * so spawnSync would deadlock it).
 */
export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000); // a hang, not a slow machine
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
  rateFloodCloseMs: 600_000,
  connectsPerWindow: 10_000,
  connectWindowMs: 60_000,
  maxPending: 1000,
  maxPendingPerAddress: 1000,
  revalidateIntervalMs: 60_000,
};

export interface DeviceCert {
  key: string;
  cert: string;
  serialHex: string;
}

export interface BrokerFixture {
  t: TestDatabase;
  broker: Broker;
  pki: Pki;
  port: number;
  caPem: string;
  /** The whole CA (server key and chain) for other listeners under test. */
  ca: LoadedCa;
  /** Current CRLs (issuing CA's and root's), as the broker uses them. */
  crls(): Promise<string[]>;
  received: { session: DeviceSession; message: UpstreamPublish }[];
  ingest: Ingest | undefined;
  /** Ingest's own connections (a LOGIN role in `thamani_ingest`, as `thamani start` uses), with `ingest`. */
  ingestDb: Database | undefined;
  /** Security events as `thamani start` wires them: aggregated, on a pool of their own (2 connections). */
  securityEvents: SecurityEvents;
  /** The NOTIFY listener the broker reacts to. */
  events: DeviceEvents;
  /** Moves the PKI's clock (undefined: real time). */
  clock: { value: Date | undefined };
  /** Registers a device and enrols it through our PKI (an expired one is issued "400 days ago"). */
  addDevice(
    id: string,
    opts?: {
      status?: 'pending' | 'active' | 'suspended' | 'retired';
      expired?: boolean;
      key?: DeviceKeyType;
    },
  ): Promise<DeviceCert>;
  revoke(serialHex: string): Promise<void>;
  setStatus(deviceId: string, status: 'suspended' | 'retired' | 'active'): Promise<void>;
  connect(cert: { key: string; cert: string }, opts?: mqtt.IClientOptions): Promise<MqttClient>;
  files(cert: DeviceCert): { ca: string; cert: string; key: string };
  close(): Promise<void>;
}

const admin = { actorId: 'test-admin', actorRole: 'admin' };

/** The real broker, wired to the real PKI, registry and NOTIFY events, on a database of its own. */
export const testIngestConfig: IngestConfig = {
  maxBatch: 500,
  maxFutureMs: 300_000,
  backfillMs: 7 * 86_400_000,
  maxPayloadBytes: 200 * 1024,
  quarantinePayloadBytes: 16 * 1024,
  batchMaxRows: 5000,
  batchMaxWaitMs: 5,
  maxPending: 50_000,
  commitTimeoutMs: 30_000,
  maxSeqJump: 1_000_000,
};

export async function startBrokerFixture(
  config: Partial<BrokerConfig> = {},
  opts: {
    ingest?: Partial<IngestConfig>;
    securityEvents?: Partial<SecurityEventsConfig>;
    /** Where the NOTIFY listener connects, given the test database's URL (default: that URL). */
    eventsUrl?: (databaseUrl: string) => string;
    onStored?: (rows: readonly RowIn[]) => void;
    state?: UpstreamHandler;
    onSubscribed?: (deviceId: string, suffixes: string[]) => void;
    /**
     * More upstream handlers and subscription listeners, made once the broker exists (its
     * publisher) and before it listens: remote configuration (device-config/).
     */
    routes?: (ctx: {
      broker: Broker;
      events: DeviceEvents;
      t: TestDatabase;
      audit: ReturnType<typeof createAuditLog>;
    }) => {
      handlers: Record<string, UpstreamHandler>;
      onSubscribed?: (deviceId: string, suffixes: string[]) => void;
      onDelivered?: (deviceId: string, suffix: string, payload: Buffer) => void;
    };
    /** Runs before ingest sees a telemetry message: a place to plant a fault (input-guard.test.ts). */
    beforeTelemetry?: (message: UpstreamPublish) => void;
  } = {},
): Promise<BrokerFixture> {
  const t = await createTestDatabase();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'thamani-broker-'));
  const ca = await loadOrCreateCa({
    dir: path.join(dir, 'pki'),
    passphrase: 'broker test passphrase!',
    serverNames: ['localhost', '127.0.0.1'],
    serverCertDays: 30,
    logger: testLogger,
  });
  const audit = createAuditLog({ db: t.database.db, signer: testAuditSigner });
  const clock: { value: Date | undefined } = { value: undefined };
  const pki = createPki({
    db: t.database.db,
    ca,
    audit,
    config: {
      passphrase: undefined,
      dir,
      deviceCertDays: 30,
      serverCertDays: 30,
      enrolmentTokenHours: 24,
      renewalWindowDays: 30,
      rotationOverlapHours: 24,
    },
    brokerUrl: 'mqtts://localhost',
    now: () => clock.value ?? new Date(),
  });
  const devices = createDeviceService({ db: t.database.db, audit });
  const events = createDeviceEvents({ url: opts.eventsUrl?.(t.url) ?? t.url, logger: testLogger });
  await events.ready;
  events.on('certificate_revoked', () => pki.invalidateCrl());
  events.on('resync', () => pki.invalidateCrl());
  const site = await devices.addSite({ name: `site-${path.basename(dir)}` }, admin);
  const unit = await devices.addUnit({ site: site.id, kind: 'biodigester', name: 'D1' }, admin);
  const received: BrokerFixture['received'] = [];
  const crls = async (): Promise<string[]> => [(await pki.crl()).pem, ca.rootCrlPem!];

  // Security events write over connections of their own, as in production (app/start.ts).
  const securityDb = createDatabase({
    url: t.url,
    poolMax: 2,
    logger: testLogger,
    applicationName: 'thamani-security-events',
  });
  const securityEvents = createSecurityEvents({
    audit: createAuditLog({ db: securityDb.db, signer: testAuditSigner }),
    logger: testLogger,
    config: { windowMs: 60_000, maxKeys: 1000, ...opts.securityEvents },
    deviceOfSerial: async (serial) => (await pki.connectionIdentity(serial))?.deviceId,
  });
  const broker = await createBroker({
    config: { ...testBrokerConfig, ...config },
    logger: testLogger,
    tls: {
      key: ca.server.privateKeyPem,
      cert: `${ca.server.certPem.trim()}\n${ca.issuing.certPem}`,
      ca: ca.caPems,
      crl: await crls(),
    },
    crl: crls,
    identity: pki,
    events,
    securityEvents,
    presence: createPresence({ pool: t.database.pool, logger: testLogger, flushMs: 200 }),
  });
  // Ingest logs in as a member of thamani_ingest, as in production (app/database.ts); roles are
  // cluster-wide, so a name of its own per fixture.
  const ingestRole = `thamani_ingest_t_${randomBytes(4).toString('hex')}`;
  const ingestDb: Database | undefined = opts.ingest
    ? await openAsLoginRole(
        { client: t.database.pool, url: t.url },
        {
          kind: 'ingest',
          loginRole: ingestRole,
          password: randomBytes(18).toString('base64url'),
          poolMax: 5,
          logger: testLogger,
        },
      )
    : undefined;
  const ingest = ingestDb
    ? createIngest({
        pool: ingestDb.pool,
        logger: testLogger,
        config: { ...testIngestConfig, ...opts.ingest },
        publisher: broker.publisher,
        backpressure: broker.backpressure,
        onStored: opts.onStored,
      })
    : undefined;
  const extra = opts.routes?.({ broker, events, t, audit });
  const onSubscribed = [opts.onSubscribed, extra?.onSubscribed].filter((f) => f !== undefined);
  const { port } = await broker.listen({
    ...(onSubscribed.length > 0
      ? { onSubscribed: (id: string, s: string[]) => onSubscribed.forEach((f) => f(id, s)) }
      : {}),
    ...(extra?.onDelivered ? { onDelivered: extra.onDelivered } : {}),
    ...(ingest ? { internalReject: ingest.rejectInternal } : {}),
    handlers: {
      telemetry: {
        callback(session, message, done) {
          received.push({ session, message });
          opts.beforeTelemetry?.(message);
          if (ingest) ingest.handleTelemetry.callback(session, message, done);
          else done(null);
        },
      },
      state: (session, message) => (opts.state ? opts.state(session, message) : Promise.resolve()),
      'cert/csr': createRenewalHandler({ pki, publisher: broker.publisher, logger: testLogger }),
      ...extra?.handlers,
    },
  });
  if (ingest) events.on('sequence_reset', (e) => ingest.resetSequence(e.deviceId));

  return {
    t,
    broker,
    pki,
    port,
    caPem: ca.rootCertPem,
    ca,
    crls,
    received,
    ingest,
    ingestDb,
    securityEvents,
    events,
    clock,
    async addDevice(id, opts = {}) {
      await devices.addDevice({ id, unit: unit.id }, admin);
      const { key, csr } = deviceKeyAndCsr(id, opts.key);
      const saved = clock.value;
      if (opts.expired) clock.value = new Date(Date.now() - 400 * 86_400_000);
      try {
        const issued = await pki.issueFromCsr(id, csr, admin);
        if (opts.status && opts.status !== 'pending')
          await t.database.pool.query(`UPDATE devices SET status = $2 WHERE id = $1`, [
            id,
            opts.status,
          ]);
        return { key, cert: issued.certificate, serialHex: issued.serial };
      } finally {
        clock.value = saved;
      }
    },
    async revoke(serialHex) {
      await pki.revoke(serialHex, 'keyCompromise', admin);
    },
    async setStatus(deviceId, status) {
      await devices.setStatus(deviceId, status, admin);
    },
    connect(cert, opts = {}) {
      return tryConnect(`mqtts://localhost:${port}`, {
        key: cert.key,
        cert: cert.cert,
        ca: ca.rootCertPem,
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 5000,
        keepalive: 30,
        ...opts,
      });
    },
    files(cert) {
      const base = path.join(dir, cert.serialHex);
      writeFileSync(`${base}.ca.pem`, ca.rootCertPem);
      writeFileSync(`${base}.cert.pem`, cert.cert);
      writeFileSync(`${base}.key.pem`, cert.key, { mode: 0o600 });
      return { ca: `${base}.ca.pem`, cert: `${base}.cert.pem`, key: `${base}.key.pem` };
    },
    async close() {
      await broker.close();
      await securityEvents.stop();
      await securityDb.close();
      await ingest?.stop();
      await events.close();
      if (ingestDb) {
        await ingestDb.close();
        await t.database.pool.query(`DROP ROLE IF EXISTS ${ingestRole}`).catch(() => undefined);
      }
    },
  };
}

/**
 * Connects and reports the outcome: 'connected', `connack:<code>` for a CONNACK refusal, or
 * `tls:<code>` when the connection failed before a CONNACK (handshake refused, socket closed).
 */
export async function connectOutcome(
  connect: () => Promise<{ end(force?: boolean): unknown }>,
): Promise<string> {
  try {
    const client = await connect();
    await client.end(true);
    return 'connected';
  } catch (err) {
    const e = err as { code?: number | string; message: string };
    return typeof e.code === 'number' ? `connack:${e.code}` : `tls:${e.code ?? e.message}`;
  }
}

/**
 * Writes raw CONNECT bytes over mTLS (packets MQTT.js will not send) and resolves with the
 * CONNACK return code, `packet 0x..` for another first packet, or 'closed' with no answer.
 */
export function rawConnack(
  f: Pick<BrokerFixture, 'port' | 'caPem'>,
  cert: { key: string; cert: string },
  connect: Buffer,
): Promise<number | string> {
  return new Promise((resolve) => {
    const socket = tls.connect(
      {
        host: '127.0.0.1',
        port: f.port,
        ca: f.caPem,
        key: cert.key,
        cert: cert.cert,
        servername: 'localhost',
      },
      () => socket.write(connect),
    );
    let got = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length < 4) return;
      // CONNACK: 0x20 0x02 <session present> <return code> [MQTT-3.2]
      resolve(got[0] === 0x20 ? got[3]! : `packet 0x${got[0]?.toString(16)}`);
      socket.destroy();
    });
    socket.on('close', () => resolve('closed'));
    socket.on('error', () => undefined);
  });
}
