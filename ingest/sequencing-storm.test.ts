import net from 'node:net';
import tls from 'node:tls';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrokerFixture, type BrokerFixture, type DeviceCert } from '../test/broker-fixture.ts';

/**
 * Readings sent in order are stored, whatever happens around them: pacing by the rate limiter
 * (its timers), a storm of other connections stalling the event loop, and the device's own
 * connection cut mid-flight (its unacknowledged publishes are re-sent on the next one, possibly
 * after later ones were already committed).
 */

let f: BrokerFixture;
beforeAll(async () => {
  // The production rate limit: the devices below send faster than it, so their PUBACKs are paced.
  f = await startBrokerFixture(
    { ratePerSecond: 20, rateBurst: 100, rateMaxWaitMs: 60_000 },
    { ingest: { commitTimeoutMs: 300 } },
  );
});
afterAll(async () => {
  await f?.close();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A device that sends 50-reading batches with strictly increasing seq and ts, as firmware does:
 * it keeps every message until its PUBACK and, after its connection is cut, reconnects and sends
 * every unacknowledged one again, oldest first, before anything new.
 */
function device(id: string, cert: DeviceCert, perSecond: number) {
  const acked = new Set<number>();
  const unacked = new Map<number, string>(); // first seq of the batch → payload, in sending order
  const base = Date.now() - 3_600_000;
  let next = 0;
  let running = true;
  let client: MqttClient | undefined;
  const send = (c: MqttClient, first: number, payload: string): void => {
    c.publish(`devices/${id}/telemetry`, payload, { qos: 1 }, (err) => {
      if (err || !unacked.has(first)) return;
      unacked.delete(first);
      for (let i = 0; i < 50; i++) acked.add(first + i);
    });
  };
  const connected = async (): Promise<MqttClient> => {
    while (!client?.connected) {
      client = await f.connect(cert, { clientId: id, keepalive: 30 }).catch(() => undefined);
      if (!client) {
        await sleep(50);
        continue;
      }
      client.on('error', () => undefined);
      for (const [first, payload] of unacked) send(client, first, payload);
    }
    return client;
  };
  const pump = async (): Promise<void> => {
    while (running) {
      const c = await connected();
      const first = next;
      next += 50;
      const batch = Array.from({ length: 50 }, (_, i) => ({
        seq: first + i,
        ts: new Date(base + (first + i) * 10).toISOString(),
        readings: { ph: 7, temperature_c: 30 + ((first + i) % 100) / 10 },
      }));
      const payload = JSON.stringify({ batch });
      unacked.set(first, payload);
      send(c, first, payload);
      await sleep(1000 / perSecond);
    }
    // Every message is acknowledged in the end (re-sent after each cut until it is).
    const deadline = Date.now() + 60_000;
    while (unacked.size > 0 && Date.now() < deadline) {
      await connected();
      await sleep(50);
    }
    await client?.endAsync();
  };
  const done = pump();
  return {
    acked,
    get sent() {
      return next;
    },
    async stop(): Promise<void> {
      running = false;
      await done;
    },
  };
}

/** Connections that come and go as fast as they can: half full MQTT sessions, half bare TLS knocks. */
function storm(certs: { id: string; cert: DeviceCert }[], parallel: number) {
  let running = true;
  let cycles = 0;
  const one = async (i: number): Promise<void> => {
    while (running) {
      if (i % 2 === 0) {
        const c = certs[i % certs.length]!;
        const client = await f.connect(c.cert, { clientId: c.id }).catch(() => undefined);
        await sleep(Math.random() * 20);
        client?.end(true);
      } else {
        await new Promise<void>((resolve) => {
          const s = tls.connect(
            { host: '127.0.0.1', port: f.port, rejectUnauthorized: false },
            () => s.destroy(),
          );
          s.on('error', () => undefined);
          s.on('close', () => resolve());
        });
      }
      cycles++;
    }
  };
  const all = Promise.all(Array.from({ length: parallel }, (_, i) => one(i)));
  return {
    get cycles() {
      return cycles;
    },
    async stop(): Promise<void> {
      running = false;
      await all;
    },
  };
}

/**
 * CPU-bound I/O callbacks, as a storm of TLS handshakes makes them: each busy for `ms` inside the
 * poll phase, where the timers due meanwhile cannot run (libuv runs them in the next loop turn).
 */
async function stallingIo(ms: number) {
  const server = net.createServer((s) => {
    s.on('data', () => {
      const until = performance.now() + ms;
      while (performance.now() < until); // the stall under test
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => undefined);
  const timer = setInterval(() => client.write('x'), 150);
  return {
    async stop(): Promise<void> {
      clearInterval(timer);
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('sequencing under a connection storm', () => {
  it('stores every acknowledged reading sent in order: none is quarantined as SEQ_REGRESSION', async () => {
    const ids = ['bd-seq-storm-1', 'bd-seq-storm-2', 'bd-seq-storm-3'];
    const certs = await Promise.all(ids.map((id) => f.addDevice(id)));
    const stormCerts = await Promise.all(
      Array.from({ length: 6 }, (_, i) => `bd-seq-noise-${i}`).map(async (id) => ({
        id,
        cert: await f.addDevice(id),
      })),
    );
    // Above the rate limit (20/s, burst 100): after the burst every publish waits for its token.
    const devices = ids.map((id, i) => device(id, certs[i]!, 30));
    const noise = storm(stormCerts, 12);
    const stall = await stallingIo(80);
    // The devices' own connections are cut now and then: re-sends race later publishes.
    for (let round = 0; round < 6; round++) {
      await sleep(1000 + Math.random() * 500);
      for (const id of ids) f.broker.disconnectDevice(id);
    }
    await noise.stop();
    await stall.stop();
    await Promise.all(devices.map((d) => d.stop()));
    expect(noise.cycles).toBeGreaterThan(0);
    const pool = f.t.database.pool;
    for (const [i, id] of ids.entries()) {
      const d = devices[i]!;
      const { rows: q } = await pool.query<{ reasons: { code: string }[]; n: number }>(
        `SELECT reasons, count(*)::int AS n FROM quarantine WHERE device_id = $1 GROUP BY reasons`,
        [id],
      );
      expect(q, `quarantine of ${id}`).toEqual([]);
      const { rows } = await pool.query<{ seq: string }>(
        `SELECT seq FROM readings WHERE device_id = $1`,
        [id],
      );
      const stored = new Set(rows.map((r) => Number(r.seq)));
      const lost = [...d.acked].filter((s) => !stored.has(s));
      expect(lost, `acknowledged but not stored for ${id}`).toEqual([]);
      expect(d.acked.size).toBe(d.sent);
    }
  }, 120_000);
});
