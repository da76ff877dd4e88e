import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerGatewayMetrics } from '../app/gateway-metrics.ts';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';

/** Low rate, so that a limit that forgets across reconnects shows at any machine speed. */
const RATE = 2;
const BURST = 10;
const FLOOD_CLOSE_MS = 1500;
const CONNECTS = 5;

let f: BrokerFixture;
const handledAt = new Map<string, number[]>();
beforeAll(async () => {
  f = await startBrokerFixture(
    {
      ratePerSecond: RATE,
      rateBurst: BURST,
      rateMaxWaitMs: 600_000,
      rateFloodCloseMs: FLOOD_CLOSE_MS,
      connectsPerWindow: CONNECTS,
      connectWindowMs: 60_000,
    },
    {
      ingest: {},
      // The moment each publish reaches its handler, i.e. after any wait for a token.
      state: (session) => {
        handledAt.set(session.deviceId, [
          ...(handledAt.get(session.deviceId) ?? []),
          performance.now(),
        ]);
        return Promise.resolve();
      },
    },
  );
});
afterAll(async () => {
  await f?.close();
});

async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  ms = 30_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const audit = async (
  action: string,
  targetLike: string,
): Promise<{ after: Record<string, unknown> }[]> =>
  (
    await f.t.database.pool.query<{ after: Record<string, unknown> }>(
      `SELECT after FROM audit_log WHERE action = $1 AND (actor_id LIKE $2 OR target_id LIKE $2)`,
      [action, targetLike],
    )
  ).rows;

describe('per-device limits over real mTLS', () => {
  it('holds the publish rate across reconnects, clean and persistent sessions alike', async () => {
    const cert = await f.addDevice('bd-flood-reconnect');
    const started = performance.now();
    for (let round = 0; round < 4; round++) {
      // Each round: a fresh connection (alternating clean and persistent session), a burst, gone.
      const client = await f.connect(cert, {
        clientId: 'bd-flood-reconnect',
        clean: round % 2 === 0,
      });
      for (let i = 0; i < BURST; i++)
        void client
          .publishAsync('devices/bd-flood-reconnect/state', `{"seq":${round * BURST + i}}`, {
            qos: 1,
          })
          .catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
      client.end(true);
    }
    await new Promise((r) => setTimeout(r, 1000));
    const times = handledAt.get('bd-flood-reconnect') ?? [];
    expect(times.length).toBeGreaterThanOrEqual(BURST);
    // The k-th publish handled (1-based) is no earlier than (k - burst) / rate after the start,
    // however long the connects took: one bucket per device, not per connection.
    times.forEach((t, i) =>
      expect({ k: i + 1, atMs: Math.round(t - started) }).toEqual({
        k: i + 1,
        atMs: expect.toSatisfy((ms: number) => ms + 1 >= ((i + 1 - BURST) / RATE) * 1000),
      }),
    );
  });

  it('closes a sustained flood, records it and counts it in thamani_mqtt_rate_limited_total; a device within its rate stays', async () => {
    const floodCert = await f.addDevice('bd-flood-flood');
    const calmCert = await f.addDevice('bd-flood-calm');
    const registry = new Registry();
    registerGatewayMetrics(registry, { broker: f.broker, ingest: f.ingest! });
    const metric = async (): Promise<number> =>
      (await registry.getSingleMetric('thamani_mqtt_rate_limited_total')!.get()).values[0]?.value ??
      0;
    const before = await metric();

    const calm = await f.connect(calmCert, { clientId: 'bd-flood-calm' });
    const flood = await f.connect(floodCert, { clientId: 'bd-flood-flood' });
    let floodClosed = false;
    flood.on('close', () => (floodClosed = true));
    let calmClosed = false;
    calm.on('close', () => (calmClosed = true));
    for (let i = 0; i < 300; i++)
      void flood
        .publishAsync('devices/bd-flood-flood/state', `{"seq":${i}}`, { qos: 1 })
        .catch(() => undefined);
    // The calm device sends well under its rate for longer than the flood window.
    const calmUntil = Date.now() + FLOOD_CLOSE_MS + 1500;
    for (let i = 0; Date.now() < calmUntil; i++) {
      await calm.publishAsync('devices/bd-flood-calm/state', `{"seq":${i}}`, { qos: 1 });
      await new Promise((r) => setTimeout(r, 1000 / RATE + 300));
    }
    await until('the flooding connection to be closed', () => floodClosed);
    expect(calmClosed).toBe(false);
    expect(f.broker.clients().map((c) => c.deviceId)).toContain('bd-flood-calm');
    expect(await metric()).toBeGreaterThan(before);
    await until(
      'the security event',
      async () => (await audit('security.rate_limited', 'device:bd-flood-flood')).length > 0,
    );
    expect((await audit('security.rate_limited', 'device:bd-flood-flood'))[0]!.after).toMatchObject(
      { reason: 'sustained_flood', ratePerSecond: RATE },
    );
    // Far fewer than sent were handled: the flood was paced, then cut.
    expect((handledAt.get('bd-flood-flood') ?? []).length).toBeLessThan(BURST + RATE * 10);
    flood.end(true);
    await calm.endAsync();
  }, 60_000);

  it(`refuses a device's CONNECT beyond ${CONNECTS} a window with CONNACK 3 and records it; other devices connect`, async () => {
    const cert = await f.addDevice('bd-flood-connects');
    for (let i = 0; i < CONNECTS; i++)
      await (await f.connect(cert, { clientId: 'bd-flood-connects' })).endAsync();
    const refused = await f.connect(cert, { clientId: 'bd-flood-connects' }).then(
      (c) => (c.end(true), 'connected'),
      (err: { code?: unknown }) => `connack:${String(err.code)}`,
    );
    expect(refused).toBe('connack:3');
    expect(f.broker.counters.connectsThrottled).toBeGreaterThan(0);
    const other = await f.addDevice('bd-flood-connects-other');
    await (await f.connect(other, { clientId: 'bd-flood-connects-other' })).endAsync();
    await until(
      'the security event',
      async () => (await audit('security.connect_refused', 'bd-flood-connects')).length > 0,
    );
    expect((await audit('security.connect_refused', 'bd-flood-connects'))[0]!.after).toMatchObject({
      reason: 'connect_rate_exceeded',
      returnCode: 3,
    });
  });
});
