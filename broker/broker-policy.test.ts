import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeRemainingLength } from './packet-guard.ts';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';

let f: BrokerFixture;
/** What the broker reported as granted subscriptions (deviceId: suffixes). */
const subscribed: string[] = [];
beforeAll(async () => {
  f = await startBrokerFixture(
    { maxPacketBytes: 256 * 1024, ratePerSecond: 20, rateBurst: 20, rateMaxWaitMs: 60_000 },
    { onSubscribed: (id, suffixes) => subscribed.push(`${id}: ${suffixes.join(',')}`) },
  );
});
afterAll(async () => {
  await f?.close();
});

/** Security events are recorded off the hot path: read them with expect.poll. */
async function auditActions(
  action: string,
): Promise<{ actor_id: string; target_id: string; after: Record<string, unknown> }[]> {
  await f.securityEvents.flush(); // aggregated per device and reason: write the open windows
  const { rows } = await f.t.database.pool.query<{
    actor_id: string;
    target_id: string;
    after: Record<string, unknown>;
  }>(`SELECT actor_id, target_id, after FROM audit_log WHERE action = $1`, [action]);
  return rows;
}

describe('topic isolation', () => {
  it("refuses a publish to another device's topic: no ack, connection closed, nothing handled, recorded", async () => {
    const a = await f.addDevice('bd-pol-a');
    await f.addDevice('bd-pol-b');
    const client = await f.connect(a, { clientId: 'bd-pol-a' });
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const acked = client.publishAsync('devices/bd-pol-b/telemetry', '{"seq":1}', { qos: 1 }).then(
      () => 'acked',
      () => 'not acked',
    );
    await closed;
    client.end(true);
    expect(
      await Promise.race([acked, new Promise((r) => setTimeout(() => r('not acked'), 300))]),
    ).toBe('not acked');
    expect(f.received.some((r) => r.message.topic === 'devices/bd-pol-b/telemetry')).toBe(false);
    await expect
      .poll(() => auditActions('security.publish_denied'))
      .toContainEqual(
        expect.objectContaining({
          actor_id: 'device:bd-pol-a',
          target_id: 'devices/bd-pol-b/telemetry',
          after: expect.objectContaining({ reason: 'not_own_topic', certSerial: a.serialHex }),
        }),
      );
  });

  it('refuses $SYS publishes and retained telemetry', async () => {
    const a = await f.addDevice('bd-pol-sys');
    for (const [topic, retain] of [
      ['$SYS/broker/new/clients', false],
      ['devices/bd-pol-sys/telemetry', true],
    ] as const) {
      const client = await f.connect(a, { clientId: 'bd-pol-sys' });
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      client.publish(topic, 'x', { qos: 1, retain });
      await closed;
      client.end(true);
    }
    const reasons = async (): Promise<unknown[]> =>
      (await auditActions('security.publish_denied'))
        .filter((e) => e.actor_id === 'device:bd-pol-sys')
        .map((e) => e.after.reason);
    await expect
      .poll(reasons)
      .toEqual(expect.arrayContaining(['system_topic', 'retain_not_allowed']));
  });

  it("refuses subscriptions to '#', another device's topics and $SYS, and grants its own", async () => {
    const a = await f.addDevice('bd-pol-sub');
    const client = await f.connect(a, { clientId: 'bd-pol-sub' });
    // MQTT.js turns any 0x80 in a SUBACK into an error that carries the packet.
    const granted = await client
      .subscribeAsync(
        [
          '#',
          'devices/bd-pol-b/#',
          '$SYS/#',
          'devices/bd-pol-b/errors',
          'devices/bd-pol-sub/#',
          'devices/bd-pol-sub/errors',
        ],
        { qos: 1 },
      )
      .then(
        (g) => g.map((x) => x.qos),
        (err: { packet?: { granted: number[] } }) => err.packet?.granted,
      );
    expect(granted).toEqual([128, 128, 128, 128, 128, 1]);
    // Only the granted filter, of its own topics, is reported (the firmware resend listens to this).
    expect(subscribed.filter((s) => s.startsWith('bd-pol-sub'))).toEqual(['bd-pol-sub: errors']);
    // The session survives a refused subscription and still works.
    await client.publishAsync('devices/bd-pol-sub/telemetry', '{"seq":1}', { qos: 1 });
    await client.endAsync();
    // Aggregated per reason (wildcard, system_topic, not_own_topic): every filter is in a record's samples.
    const refused = (await auditActions('security.subscribe_denied')).filter(
      (e) => e.actor_id === 'device:bd-pol-sub',
    );
    const targets = refused.flatMap((e) =>
      (e.after.samples as { text: string }[]).map((x) => x.text),
    );
    expect(targets.sort()).toEqual([
      '#',
      '$SYS/#',
      'devices/bd-pol-b/#',
      'devices/bd-pol-b/errors',
      'devices/bd-pol-sub/#',
    ]);
    expect(refused.reduce((n, e) => n + (e.after.count as number), 0)).toBe(5);
  });

  it('delivers server messages only to the device they are addressed to', async () => {
    const a = await f.addDevice('bd-pol-down');
    const client = await f.connect(a, { clientId: 'bd-pol-down' });
    await client.subscribeAsync('devices/bd-pol-down/errors', { qos: 1 });
    const got = new Promise<string>((resolve) =>
      client.once('message', (topic, payload) => resolve(`${topic} ${payload.toString()}`)),
    );
    await f.broker.publisher.publish('bd-pol-down', 'errors', '{"code":"X"}');
    expect(await got).toBe('devices/bd-pol-down/errors {"code":"X"}');
    await client.endAsync();
  });
});

describe('limits', () => {
  it('closes a 20 MB publish from its header without buffering it; other devices are unaffected', async () => {
    const bystanderCert = await f.addDevice('bd-pol-bystander');
    const bystander = await f.connect(bystanderCert, { clientId: 'bd-pol-bystander' });
    const attacker = await f.addDevice('bd-pol-big');
    const client = await f.connect(attacker, { clientId: 'bd-pol-big' });
    client.end(true);
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    // Raw TLS so that this test, not a client library, controls what is sent: the header of a
    // 20 MB PUBLISH, then the body in 64 KiB slices for as long as the broker keeps reading.
    const sent = await new Promise<number>((resolve) => {
      let bytes = 0;
      const socket = tls.connect(
        {
          host: '127.0.0.1',
          port: f.port,
          ca: f.caPem,
          key: attacker.key,
          cert: attacker.cert,
          servername: 'localhost',
        },
        () => {
          const id = Buffer.from('bd-pol-big');
          const variable = Buffer.from([
            0,
            4,
            0x4d,
            0x51,
            0x54,
            0x54,
            4,
            0x02,
            0,
            30,
            0,
            id.length,
            ...id,
          ]);
          socket.write(Buffer.concat([Buffer.from([0x10, variable.length]), variable]));
          const topic = Buffer.from('devices/bd-pol-big/telemetry');
          const body = 20 * 1024 * 1024;
          const len = encodeRemainingLength(2 + topic.length + 2 + body);
          socket.write(
            Buffer.concat([
              Buffer.from([0x32, ...len, 0, topic.length]),
              topic,
              Buffer.from([0, 1]),
            ]),
          );
          const slice = Buffer.alloc(64 * 1024, 0x41);
          const pump = (): void => {
            while (!socket.destroyed && bytes < body) {
              bytes += slice.length;
              if (!socket.write(slice)) return void socket.once('drain', pump);
            }
          };
          pump();
        },
      );
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(bytes));
    });
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    expect(sent).toBeLessThan(20 * 1024 * 1024); // cut off long before the body was through
    expect(rssGrowth).toBeLessThan(8 * 1024 * 1024);
    await bystander.publishAsync('devices/bd-pol-bystander/telemetry', '{"seq":1}', { qos: 1 });
    expect(f.received.some((r) => r.session.deviceId === 'bd-pol-bystander')).toBe(true);
    await bystander.endAsync();
    await expect
      .poll(() => auditActions('security.packet_rejected'))
      .toContainEqual(
        expect.objectContaining({
          after: expect.objectContaining({ declaredBytes: expect.any(Number) }),
        }),
      );
  });

  it("paces a flooding device to its rate while another device's readings keep flowing", async () => {
    const floodCert = await f.addDevice('bd-pol-flood');
    const calmCert = await f.addDevice('bd-pol-calm');
    const flood = await f.connect(floodCert, { clientId: 'bd-pol-flood' });
    const calm = await f.connect(calmCert, { clientId: 'bd-pol-calm' });
    let floodAcked = 0;
    const started = Date.now();
    for (let i = 0; i < 400; i++)
      void flood.publishAsync('devices/bd-pol-flood/telemetry', `{"seq":${i}}`, { qos: 1 }).then(
        () => floodAcked++,
        () => undefined,
      );
    // The calm device is not queued behind the flood: each of its readings is acknowledged while
    // the flood still waits for tokens (400 at 20/s take about 19 s however fast the machine is).
    const floodWaitingAtCalmAck: number[] = [];
    for (let i = 0; i < 10; i++) {
      await calm.publishAsync('devices/bd-pol-calm/telemetry', `{"seq":${i}}`, { qos: 1 });
      floodWaitingAtCalmAck.push(400 - floodAcked);
      await new Promise((r) => setTimeout(r, 100));
    }
    const elapsed = (Date.now() - started) / 1000;
    // Burst of 20 plus 20/s; the flood's other messages wait for tokens (not dropped, not acked early).
    expect(floodAcked).toBeLessThanOrEqual(20 + Math.ceil(20 * elapsed) + 5);
    expect(floodAcked).toBeGreaterThanOrEqual(20);
    expect(Math.min(...floodWaitingAtCalmAck)).toBeGreaterThan(0);
    flood.end(true);
    await calm.endAsync();
  });
});
