import tls from 'node:tls';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clusterRegistry,
  lostReadings,
  publishThroughCluster,
  sendReadings,
  type DeviceCreds,
  type Sender,
} from '../test/cluster-fixture.ts';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { startNodes, type Gateway } from '../test/gateway.ts';
import { startHaproxy, type Haproxy } from '../test/haproxy-fixture.ts';
import { httpsRequest } from '../test/https-client.ts';
import { startRedis, type RedisServer } from '../test/redis-fixture.ts';
import { requireTool } from '../test/tools.ts';
import { waitFor } from '../test/wait.ts';

/**
 * Issue 18, faults: two gateway processes on one PostgreSQL and one real `redis-server`, behind a
 * real `haproxy` in TCP passthrough with PROXY v2. Devices are real MQTT.js clients with mTLS
 * that connect from 127.0.0.2 (HAProxy connects from 127.0.0.1, the only trusted proxy): what a
 * node logs as the device's address shows whether it believed the header.
 */

const hasTools = requireTool('redis-server') && requireTool('haproxy');
const PATIENCE = 240_000;
const DEVICE_ADDRESS = '127.0.0.2';

let t: TestDatabase;
let redis: RedisServer;
let proxy: Haproxy;
let nodes: Gateway[] = [];
let registry: Awaited<ReturnType<typeof clusterRegistry>>;
const senders: Sender[] = [];

const proxyUrl = (): string => `mqtts://localhost:${proxy.mqttPort}`;

function connectOnce(url: string, d: DeviceCreds, o: mqtt.IClientOptions = {}) {
  return new Promise<mqtt.MqttClient>((resolve, reject) => {
    const client = mqtt.connect(url, {
      key: d.key,
      cert: d.cert,
      ca: nodes[0]!.ca,
      clientId: d.id,
      protocolVersion: 4,
      clean: false,
      reconnectPeriod: 0,
      connectTimeout: 30_000,
      // Handed to tls.connect by MQTT.js: the device's own source address.
      ...({ localAddress: DEVICE_ADDRESS } as mqtt.IClientOptions),
      ...o,
    });
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

const readyz = async (node: Gateway) => {
  const r = await httpsRequest(`${node.apiUrl}/readyz`, { ca: node.ca });
  return {
    status: r.status,
    checks: (JSON.parse(r.body) as { checks: Record<string, boolean> }).checks,
  };
};

describe.runIf(hasTools)('two nodes behind HAProxy on one Redis, under faults', () => {
  beforeAll(async () => {
    t = await createTestDatabase();
    redis = await startRedis();
    nodes = await startNodes(2, {
      database: t.name,
      env: {
        REDIS_URL: redis.url,
        MQTT_PROXY_PROTOCOL: 'true',
        MQTT_TRUSTED_PROXIES: '127.0.0.1',
        LOG_LEVEL: 'info',
      },
    });
    proxy = await startHaproxy(
      nodes.map((n, i) => ({
        name: `node${i + 1}`,
        mqttPort: Number(new URL(n.mqttUrl).port),
        apiPort: Number(new URL(n.apiUrl).port),
      })),
    );
    registry = await clusterRegistry(t.database, nodes[0]!);
  }, 600_000);

  afterAll(async () => {
    for (const s of senders) {
      s.stop();
      s.client.end(true);
    }
    await proxy?.stop();
    await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
    await redis?.stop();
  });

  it(
    "each node sees the device's own address through HAProxy; a header from anyone else is refused",
    async () => {
      const d = await registry.enrol('cf-address');
      // Through HAProxy (health checks on /readyz must have found the nodes first).
      const client = await waitFor(
        'a connection through HAProxy',
        () => connectOnce(proxyUrl(), d).catch(() => undefined),
        (c) => c !== undefined,
        PATIENCE,
      );
      // Held open until a node has logged it: a client gone at once may be gone before the
      // broker's clientReady, which then has no session to log.
      await waitFor('a node to log the device address', () =>
        nodes.some((n) => /"ip":"127\.0\.0\.2"[^\n]*"msg":"device connected"/.test(n.log())),
      );
      client!.end(true);
      expect(
        nodes.some((n) => /"ip":"127\.0\.0\.1"[^\n]*"msg":"device connected"/.test(n.log())),
      ).toBe(false);
      // Straight to a node, from an address that is not a trusted proxy: refused before TLS.
      await expect(connectOnce(nodes[0]!.mqttUrl, d)).rejects.toThrow();
      // From the trusted address but without a header (TLS first): refused as malformed.
      await expect(
        connectOnce(nodes[0]!.mqttUrl, d, { localAddress: '127.0.0.1' } as mqtt.IClientOptions),
      ).rejects.toThrow();
      await waitFor(
        'the refusals in the log',
        () => /proxy_untrusted/.test(nodes[0]!.log()) && /proxy_header/.test(nodes[0]!.log()),
      );
      // The listener is still there for the next device.
      const socket = tls.connect({
        port: proxy.mqttPort,
        host: '127.0.0.1',
        ca: nodes[0]!.ca,
        servername: 'localhost',
        key: d.key,
        cert: d.cert,
      });
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', () => resolve());
        socket.once('error', reject);
      });
      socket.destroy();
    },
    PATIENCE,
  );

  it('SIGKILL of a node under load: its devices reconnect to the other, no acknowledged reading is lost, queued QoS 1 arrives', async () => {
    const away = await registry.enrol('cf-away');
    const first = await connectOnce(proxyUrl(), away);
    await first.subscribeAsync('devices/cf-away/firmware/manifest', { qos: 1 });
    first.end(true);
    for (let i = 0; i < 6; i++) {
      const d = await registry.enrol(`cf-load-${i}`);
      senders.push(sendReadings(proxyUrl(), nodes[0]!.ca, d, { localAddress: DEVICE_ADDRESS }));
    }
    await waitFor(
      'every device publishing',
      () => senders.every((s) => s.acked.size >= 20),
      Boolean,
      PATIENCE,
    );
    const [a] = nodes as [Gateway, Gateway];
    const ackedAtKill = senders.map((s) => s.acked.size);
    const before = performance.now();
    await a.kill('SIGKILL');
    // Published while cf-away is away and node A is dead.
    await publishThroughCluster(
      redis.url,
      'devices/cf-away/firmware/manifest',
      '{"manifest":"while away"}',
    );
    await waitFor(
      'every device acknowledged again after the kill',
      () => senders.every((s, i) => s.acked.size >= ackedAtKill[i]! + 20),
      Boolean,
      PATIENCE,
    );
    console.log(
      `node A SIGKILLed: all ${senders.length} devices acknowledged 20 more readings through HAProxy after ${(performance.now() - before).toFixed(0)} ms`,
    );
    let resolveMessage: (m: string) => void = () => undefined;
    const received = new Promise<string>((r) => (resolveMessage = r));
    const again = await waitFor(
      'cf-away back through HAProxy',
      () => connectOnce(proxyUrl(), away).catch(() => undefined),
      (c) => c !== undefined,
      PATIENCE,
    );
    again!.on('message', (_topic, payload) => resolveMessage(payload.toString()));
    expect(await received).toBe('{"manifest":"while away"}');
    again!.end(true);
    for (const s of senders) expect(await lostReadings(t.database, s), s.id).toEqual([]);
  }, 600_000);

  it('Redis dies and returns: the node keeps acknowledging, /readyz says not ready, then ready again', async () => {
    const b = nodes[1]!;
    expect((await readyz(b)).status).toBe(200);
    await redis.kill('SIGKILL');
    await waitFor(
      '/readyz 503 with redis false',
      async () => {
        const r = await readyz(b).catch(() => undefined);
        return r?.status === 503 && r.checks.redis === false;
      },
      Boolean,
      PATIENCE,
    );
    // PostgreSQL is the store of record: readings go on being stored and acknowledged.
    const ackedAtKill = senders.map((s) => s.acked.size);
    await waitFor(
      'acknowledgements while Redis is down',
      () => senders.every((s, i) => s.acked.size >= ackedAtKill[i]! + 20),
      Boolean,
      PATIENCE,
    );
    expect(b.exit()).toBeUndefined();
    await redis.restart();
    await waitFor(
      '/readyz 200 again',
      async () => (await readyz(b).catch(() => undefined))?.status === 200,
      Boolean,
      PATIENCE,
    );
    // A new connection through HAProxy works again, and a queued message still reaches its device.
    const late = await registry.enrol('cf-late');
    const c = await waitFor(
      'a new device after Redis came back',
      () => connectOnce(proxyUrl(), late).catch(() => undefined),
      (x) => x !== undefined,
      PATIENCE,
    );
    c!.end(true);
    for (const s of senders) s.stop();
    await waitFor(
      'the last publishes to settle',
      () => senders.every((s) => s.inFlight() === 0),
      Boolean,
      PATIENCE,
    );
    for (const s of senders) expect(await lostReadings(t.database, s), s.id).toEqual([]);
  }, 600_000);
});
