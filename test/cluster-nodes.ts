import https from 'node:https';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { createAuditLog } from '../audit/index.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { createPki, loadOrCreateCa } from '../provisioning/index.ts';
import { testAuditSigner } from './audit-key.ts';
import type { TestDatabase } from './db.ts';
import { testLogger } from './db.ts';
import { deviceKeyAndCsr } from './device-keys.ts';
import { startGateway, type Gateway } from './gateway.ts';

/**
 * Several real `thamani start` processes on one test database (ADR 0011): they share a data
 * directory (one CA, one session secret, as nodes of one deployment share their secrets), and
 * each one's log is read for its lease changes.
 */

const PASSPHRASE = 'gateway test passphrase';

export interface ClusterNode extends Gateway {
  name: string;
  /** Log messages seen so far. */
  seen: Set<string>;
  leads(duty: 'alerts' | 'firmware'): boolean;
}

export function clusterDataDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'thamani-cluster-'));
}

export async function startNode(o: {
  name: string;
  t: TestDatabase;
  dataDir: string;
  env?: NodeJS.ProcessEnv;
  args?: string[];
}): Promise<ClusterNode> {
  const gw = await startGateway({
    database: o.t.name,
    dataDir: o.dataDir,
    args: o.args,
    env: { LOG_LEVEL: 'info', CLUSTER_LEASE_CHECK_MS: '500', ...o.env },
  });
  const seen = new Set<string>();
  const leading = new Set<string>();
  let partial = '';
  const read = (chunk: string): void => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const l of lines) {
      const m = /"msg":"([^"]*)"/.exec(l);
      if (!m) continue;
      seen.add(m[1]!);
      const lease = /cluster leader for (\w+)/.exec(m[1]!);
      if (lease)
        if (m[1]!.includes('now the')) leading.add(lease[1]!);
        else leading.delete(lease[1]!);
    }
  };
  // What was logged before ready (the lease is usually taken during start-up), then what follows.
  read(`${gw.log()}\n`);
  gw.onLog(read);
  return { ...gw, name: o.name, seen, leads: (duty) => leading.has(duty) };
}

export interface Enrolled {
  unitId: string;
  creds: Map<string, { key: string; cert: string }>;
}

/** A site, one biodigester unit and `ids` as active devices with certificates from the nodes' CA. */
export async function enrolDevices(
  t: TestDatabase,
  dataDir: string,
  ids: string[],
  unitName = 'D1',
): Promise<Enrolled> {
  const ca = await loadOrCreateCa({
    dir: path.join(dataDir, 'pki'),
    passphrase: PASSPHRASE,
    serverNames: ['localhost'],
    serverCertDays: 30,
    logger: testLogger,
  });
  const db = t.database.db;
  const audit = createAuditLog({ db, signer: testAuditSigner });
  const devices = createDeviceService({ db, audit });
  const pki = createPki({
    db,
    ca,
    audit,
    config: {
      passphrase: PASSPHRASE,
      dir: path.join(dataDir, 'pki'),
      deviceCertDays: 365,
      serverCertDays: 30,
      enrolmentTokenHours: 1,
      renewalWindowDays: 30,
      rotationOverlapHours: 1,
    },
    brokerUrl: '',
  });
  const actor = { actorId: 'test', actorRole: 'admin' };
  const site = await devices.addSite({ name: `Cluster ${unitName} ${ids[0]}` }, actor);
  const unit = await devices.addUnit({ site: site.id, kind: 'biodigester', name: unitName }, actor);
  const creds = new Map<string, { key: string; cert: string }>();
  for (const id of ids) {
    await devices.addDevice({ id, unit: unit.id }, actor);
    const keys = deviceKeyAndCsr(id);
    const issued = await pki.issueFromCsr(id, keys.csr, actor);
    creds.set(id, { key: keys.key, cert: issued.certificate });
  }
  return { unitId: unit.id, creds };
}

/** A device connected over mTLS to `node`, with whatever it receives on its topics. */
export async function connectDevice(
  node: Gateway,
  id: string,
  creds: { key: string; cert: string },
  subscribe: string[] = [],
): Promise<{ client: mqtt.MqttClient; received: { topic: string; payload: string }[] }> {
  const client = await mqtt.connectAsync(node.mqttUrl, {
    key: creds.key,
    cert: creds.cert,
    ca: node.ca,
    clientId: id,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 30_000,
  });
  const received: { topic: string; payload: string }[] = [];
  client.on('message', (topic, payload) => received.push({ topic, payload: payload.toString() }));
  for (const s of subscribe) await client.subscribeAsync(`devices/${id}/${s}`, { qos: 1 });
  return { client, received };
}

export async function publishReading(
  client: mqtt.MqttClient,
  id: string,
  seq: number,
  readings: Record<string, number>,
): Promise<void> {
  await client.publishAsync(
    `devices/${id}/telemetry`,
    JSON.stringify({ seq, ts: new Date().toISOString(), readings }),
    { qos: 1 },
  );
}

/** Server-Sent Events from GET /api/v1/live with a bearer token: every event's data, parsed. */
export function openLiveStream(
  node: Gateway,
  token: string,
): { events: { type: string; data: unknown }[]; close(): void } {
  const events: { type: string; data: unknown }[] = [];
  const url = new URL('/api/v1/live', node.apiUrl);
  let buffer = '';
  const req = https.get(
    url,
    { ca: node.ca, headers: { authorization: `Bearer ${token}` } },
    (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const type = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (type && data) events.push({ type, data: JSON.parse(data) as unknown });
        }
      });
    },
  );
  req.on('error', () => undefined);
  return { events, close: () => req.destroy() };
}

/** An API token acting as `role`, made with the CLI against the shared database. */
export async function apiToken(node: Gateway, role: string): Promise<string> {
  const out = await node.cli([
    'user',
    'token',
    `cluster-${role}-${Date.now()}`,
    '--role',
    role,
    '--json',
  ]);
  return (JSON.parse(out) as { token: string }).token;
}
