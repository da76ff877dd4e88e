import path from 'node:path';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { createAuditLog } from '../audit/index.ts';
import { connectClusterStore } from '../broker/cluster.ts';
import type { Database } from '../db/client.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { createPki, loadOrCreateCa, type Pki } from '../provisioning/index.ts';
import { testAuditSigner } from './audit-key.ts';
import { testLogger } from './db.ts';
import { deviceKeyAndCsr } from './device-keys.ts';
import type { Gateway } from './gateway.ts';

export interface DeviceCreds {
  id: string;
  key: string;
  cert: string;
  serial: string;
}

/** Enrols devices in the database the nodes share, with certificates from their CA. */
export async function clusterRegistry(db: Database, node: Gateway) {
  const ca = await loadOrCreateCa({
    dir: path.join(node.dataDir, 'pki'),
    passphrase: node.env.PKI_PASSPHRASE!,
    serverNames: ['localhost'],
    serverCertDays: 30,
    logger: testLogger,
  });
  const audit = createAuditLog({ db: db.db, signer: testAuditSigner });
  const pki: Pki = createPki({
    db: db.db,
    ca,
    audit,
    config: {
      passphrase: node.env.PKI_PASSPHRASE!,
      dir: node.dataDir,
      deviceCertDays: 30,
      serverCertDays: 30,
      enrolmentTokenHours: 1,
      renewalWindowDays: 1,
      rotationOverlapHours: 1,
    },
    brokerUrl: '',
  });
  const devices = createDeviceService({ db: db.db, audit });
  const actor = { actorId: 'test', actorRole: 'admin' };
  return {
    pki,
    actor,
    async enrol(id: string): Promise<DeviceCreds> {
      const site = await devices.addSite({ name: `Cluster ${id}` }, actor);
      const unit = await devices.addUnit({ site: site.id, kind: 'biodigester', name: id }, actor);
      await devices.addDevice({ id, unit: unit.id }, actor);
      const keys = deviceKeyAndCsr(id);
      const issued = await pki.issueFromCsr(id, keys.csr, actor);
      return { id, key: keys.key, cert: issued.certificate, serial: issued.serial };
    },
  };
}

/**
 * Publishes on a device's topic from a node of the cluster built here on the same Redis: what the
 * gateway's publisher does for a firmware manifest or an issued certificate (aedes.publish).
 */
export async function publishThroughCluster(
  redisUrl: string,
  topic: string,
  payload: string,
): Promise<void> {
  const store = await connectClusterStore({
    config: { redisUrl, connectTimeoutMs: 5000 },
    logger: testLogger,
    concurrency: 10,
  });
  const node = await Aedes.createBroker({
    mq: store.mq,
    persistence: store.persistence as never,
  });
  try {
    await new Promise<void>((resolve, reject) =>
      node.publish(
        { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  } finally {
    await new Promise<void>((resolve) => node.close(() => resolve()));
    await store.close();
  }
}

export interface Sender {
  id: string;
  client: mqtt.MqttClient;
  acked: Set<number>;
  inFlight(): number;
  stop(): void;
}

/** A device publishing QoS 1 readings (seq 1, 2, …) every `everyMs`, at most 10 unacknowledged. */
export function sendReadings(
  url: string,
  ca: string,
  d: DeviceCreds,
  o: { everyMs?: number; localAddress?: string } = {},
): Sender {
  const client = mqtt.connect(url, {
    key: d.key,
    cert: d.cert,
    ca,
    clientId: d.id,
    protocolVersion: 4,
    clean: false,
    reconnectPeriod: 300,
    connectTimeout: 30_000,
    keepalive: 30,
    reconnectOnConnackError: true,
    ...((o.localAddress ? { localAddress: o.localAddress } : {}) as mqtt.IClientOptions),
  });
  client.on('error', () => undefined);
  const acked = new Set<number>();
  let seq = 0;
  let inFlight = 0;
  const base = Date.now() - 3_600_000;
  const timer = setInterval(() => {
    if (!client.connected || inFlight >= 10) return;
    const s = ++seq;
    inFlight++;
    client.publish(
      `devices/${d.id}/telemetry`,
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
  }, o.everyMs ?? 100);
  return { id: d.id, client, acked, inFlight: () => inFlight, stop: () => clearInterval(timer) };
}

/** Acknowledged seqs of `s` that have no row in readings (must be none). */
export async function lostReadings(db: Database, s: Sender): Promise<number[]> {
  const { rows } = await db.pool.query<{ seq: string }>(
    `SELECT seq FROM readings WHERE device_id = $1`,
    [s.id],
  );
  const stored = new Set(rows.map((r) => Number(r.seq)));
  return [...s.acked].filter((seq) => !stored.has(seq));
}
