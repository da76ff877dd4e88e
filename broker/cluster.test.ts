import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { createAuditLog } from '../audit/index.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { createPki, loadOrCreateCa, type Pki } from '../provisioning/index.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { createTestDatabase, testLogger, type TestDatabase } from '../test/db.ts';
import { deviceKeyAndCsr } from '../test/device-keys.ts';
import { startNodes, type Gateway } from '../test/gateway.ts';
import { startRedis, type RedisServer } from '../test/redis-fixture.ts';
import { requireTool } from '../test/tools.ts';
import { waitFor } from '../test/wait.ts';
import { connectClusterStore } from './cluster.ts';

/**
 * Issue 18: two real gateway processes (`thamani start`) on one PostgreSQL and one real
 * `redis-server`, clustered by REDIS_URL (ADR 0010). Each test proves one thing that was
 * process-local before and must now hold across nodes.
 */

const hasRedis = requireTool('redis-server');
const PATIENCE = 120_000;

let t: TestDatabase;
let redis: RedisServer;
let nodes: Gateway[] = [];
let pki: Pki;
const creds = new Map<string, { key: string; cert: string; serial: string }>();

async function enrol(id: string): Promise<{ key: string; cert: string; serial: string }> {
  const devices = createDeviceService({
    db: t.database.db,
    audit: createAuditLog({ db: t.database.db, signer: testAuditSigner }),
  });
  const actor = { actorId: 'test', actorRole: 'admin' };
  const site = await devices.addSite({ name: `Cluster ${id}` }, actor);
  const unit = await devices.addUnit({ site: site.id, kind: 'biodigester', name: id }, actor);
  await devices.addDevice({ id, unit: unit.id }, actor);
  const keys = deviceKeyAndCsr(id);
  const issued = await pki.issueFromCsr(id, keys.csr, actor);
  const c = { key: keys.key, cert: issued.certificate, serial: issued.serial };
  creds.set(id, c);
  return c;
}

/**
 * Connects device `id` to `node` (persistent session) and resolves once it is connected;
 * `onMessage` is there before CONNACK (queued messages follow it at once).
 */
function connect(
  node: Gateway,
  id: string,
  o: mqtt.IClientOptions = {},
  onMessage?: (topic: string, payload: Buffer) => void,
): Promise<mqtt.MqttClient> {
  const c = creds.get(id)!;
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(node.mqttUrl, {
      key: c.key,
      cert: c.cert,
      ca: node.ca,
      clientId: id,
      protocolVersion: 4,
      clean: false,
      keepalive: 30,
      reconnectPeriod: 0,
      connectTimeout: 60_000,
      ...o,
    });
    if (onMessage) client.on('message', onMessage);
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

const CONNECTS_MAX = 4;
const clusterEnv = (): NodeJS.ProcessEnv => ({
  REDIS_URL: redis.url,
  LOG_LEVEL: 'info',
  MQTT_DEVICE_CONNECTS_MAX: String(CONNECTS_MAX),
});

const online = async (id: string): Promise<{ online: boolean; node_id: string | null }> =>
  (
    await t.database.pool.query<{ online: boolean; node_id: string | null }>(
      `SELECT online, node_id FROM devices WHERE id = $1`,
      [id],
    )
  ).rows[0]!;

const closed = (client: mqtt.MqttClient): Promise<number> =>
  new Promise((resolve) => {
    if (!client.connected) return resolve(performance.now());
    client.once('close', () => resolve(performance.now()));
  });

describe.runIf(hasRedis)('two gateway nodes on one Redis', () => {
  beforeAll(async () => {
    t = await createTestDatabase();
    redis = await startRedis();
    nodes = await startNodes(2, { database: t.name, env: clusterEnv() });
    const ca = await loadOrCreateCa({
      dir: path.join(nodes[0]!.dataDir, 'pki'),
      passphrase: nodes[0]!.env.PKI_PASSPHRASE!,
      serverNames: ['localhost'],
      serverCertDays: 30,
      logger: testLogger,
    });
    pki = createPki({
      db: t.database.db,
      ca,
      audit: createAuditLog({ db: t.database.db, signer: testAuditSigner }),
      config: {
        passphrase: nodes[0]!.env.PKI_PASSPHRASE!,
        dir: nodes[0]!.dataDir,
        deviceCertDays: 30,
        serverCertDays: 30,
        enrolmentTokenHours: 1,
        renewalWindowDays: 1,
        rotationOverlapHours: 1,
      },
      brokerUrl: '',
    });
  }, 600_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
    await redis?.stop();
  });

  it(
    'a device that connects to node A closes its old session on node B [MQTT-3.1.4-2]',
    async () => {
      const [a, b] = nodes as [Gateway, Gateway];
      await enrol('cl-takeover');
      const onB = await connect(b, 'cl-takeover');
      const bClosed = closed(onB);
      const onA = await connect(a, 'cl-takeover');
      await bClosed;
      expect(onB.connected).toBe(false);
      expect(onA.connected).toBe(true);
      onA.end(true);
    },
    PATIENCE,
  );

  it(
    'the CONNECT budget of a device holds across nodes, not once per node',
    async () => {
      await enrol('cl-connects');
      // Alternating nodes: each node alone sees half the budget used.
      for (let i = 0; i < CONNECTS_MAX; i++) {
        const c = await connect(nodes[i % 2]!, 'cl-connects');
        await c.endAsync(true);
      }
      const refused = await connect(nodes[0]!, 'cl-connects').then(
        (c) => {
          c.end(true);
          return undefined;
        },
        (err: { code?: number }) => err,
      );
      expect(refused?.code).toBe(3); // CONNACK 3: server unavailable, retry later (device contract)
    },
    PATIENCE,
  );

  it(
    'suspending a device through node A closes its session on node B',
    async () => {
      const [a, b] = nodes as [Gateway, Gateway];
      await enrol('cl-suspend');
      const onB = await connect(b, 'cl-suspend');
      const bClosed = closed(onB);
      const before = performance.now();
      await a.cli(['device', 'suspend', 'cl-suspend']);
      const latencyMs = (await bClosed) - before;
      console.log(
        `suspension through node A closed the session on node B after ${latencyMs.toFixed(0)} ms`,
      );
      expect(onB.connected).toBe(false);
      // And node B refuses it from now on.
      await expect(connect(b, 'cl-suspend')).rejects.toThrow();
    },
    PATIENCE,
  );

  it(
    'revoking a certificate reaches both nodes: session on B closed, TLS on A refuses it',
    async () => {
      const [a, b] = nodes as [Gateway, Gateway];
      const c = await enrol('cl-revoke');
      const onB = await connect(b, 'cl-revoke');
      const bClosed = closed(onB);
      const before = performance.now();
      await pki.revoke(c.serial, 'keyCompromise', { actorId: 'test', actorRole: 'admin' });
      const latencyMs = (await bClosed) - before;
      console.log(`revocation closed the session on node B after ${latencyMs.toFixed(0)} ms`);
      // Each node's TLS listener has the new CRL: the handshake itself refuses the certificate
      // (the socket closes with no CONNACK; a refusal from the registry would be a CONNACK code).
      for (const node of [a, b])
        await waitFor(
          'the CRL on every node',
          async () => {
            try {
              (await connect(node, 'cl-revoke', { key: c.key, cert: c.cert })).end(true);
              return false;
            } catch (err) {
              return typeof (err as { code?: unknown }).code !== 'number';
            }
          },
          Boolean,
          PATIENCE,
        );
    },
    PATIENCE,
  );

  it("presence is right across nodes, and a dead node's devices go offline", async () => {
    const [a, b] = nodes as [Gateway, Gateway];
    await enrol('cl-presence');
    const onB = await connect(b, 'cl-presence', { keepalive: 10 });
    await expect
      .poll(() => online('cl-presence'), { timeout: PATIENCE })
      .toMatchObject({ online: true });
    // Takeover onto A: B's disconnect comes after A's connect, and must not win.
    const bClosed = closed(onB);
    const onA = await connect(a, 'cl-presence', { keepalive: 10 });
    await bClosed;
    await new Promise((r) => setTimeout(r, 1000)); // both nodes' batched writes (100 ms) done
    expect(await online('cl-presence')).toMatchObject({ online: true });
    const heldBy = (await online('cl-presence')).node_id;
    // A dies: B sets its device offline (keepalive 10 s: the bound is 15 s).
    const before = performance.now();
    await a.kill('SIGKILL');
    await expect
      .poll(() => online('cl-presence'), { timeout: PATIENCE, interval: 100 })
      .toMatchObject({ online: false });
    console.log(
      `node ${heldBy} SIGKILLed: its device shown offline after ${(performance.now() - before).toFixed(0)} ms (keepalive 10 s, bound 15 s)`,
    );
    onA.end(true);
    nodes[0] = (
      await startNodes(1, { database: t.name, env: clusterEnv(), dataDir: a.dataDir })
    )[0]!;
  }, 600_000);

  it('a QoS 1 message queued for an absent device survives a restart of both nodes', async () => {
    const [a, b] = nodes as [Gateway, Gateway];
    await enrol('cl-queued');
    const first = await connect(b, 'cl-queued');
    await first.subscribeAsync('devices/cl-queued/firmware/manifest', { qos: 1 });
    first.end(true);
    await waitFor('node B to see it gone', () => !first.connected);
    // Published while it is away, by a third node of the cluster (what the gateway's publisher
    // does for a firmware manifest: aedes.publish on the device's topic).
    const store = await connectClusterStore({
      config: { redisUrl: redis.url, connectTimeoutMs: 5000 },
      logger: testLogger,
      concurrency: 10,
    });
    const publisher = await Aedes.createBroker({
      mq: store.mq,
      persistence: store.persistence as never,
    });
    await new Promise<void>((resolve, reject) =>
      publisher.publish(
        {
          cmd: 'publish',
          topic: 'devices/cl-queued/firmware/manifest',
          payload: Buffer.from('{"manifest":"queued while away"}'),
          qos: 1,
          retain: false,
          dup: false,
        },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
    await new Promise<void>((resolve) => publisher.close(() => resolve()));
    await store.close();
    // Both nodes restart (their memory is gone); only Redis kept the message.
    await Promise.all([a.kill('SIGTERM'), b.kill('SIGTERM')]);
    nodes = await startNodes(2, { database: t.name, env: clusterEnv(), dataDir: a.dataDir });
    let resolveMessage: (m: string) => void = () => undefined;
    const received = new Promise<string>((r) => (resolveMessage = r));
    const again = await connect(nodes[0]!, 'cl-queued', {}, (_topic, payload) =>
      resolveMessage(payload.toString()),
    );
    expect(await received).toBe('{"manifest":"queued while away"}');
    again.end(true);
  }, 600_000);
});
