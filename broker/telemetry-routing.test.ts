import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTelemetryTopic, mayMatchTelemetry } from './telemetry-routing.ts';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';

describe('which topics skip routing', () => {
  it('knows a telemetry topic', () => {
    expect(isTelemetryTopic('devices/bd-1/telemetry')).toBe(true);
    for (const t of [
      'devices//telemetry',
      'devices/bd-1/telemetry/x',
      'devices/a/b/telemetry',
      'devices/bd-1/errors',
      'xdevices/bd-1/telemetry',
      'devices/telemetry',
    ])
      expect(isTelemetryTopic(t), t).toBe(false);
  });

  it('knows which filters could match one [MQTT-4.7]', () => {
    for (const f of [
      '#',
      'devices/#',
      'devices/+/telemetry',
      'devices/bd-1/telemetry',
      '+/+/telemetry',
      '+/#',
      'devices/+/#',
      'devices/bd-1/telemetry/#',
      '+/+/+',
    ])
      expect(mayMatchTelemetry(f), f).toBe(true);
    for (const f of [
      'devices/+/errors',
      'devices/bd-1/cert/issued',
      '$SYS/#',
      '$SYS/+/heartbeat',
      'devices/+',
      'devices/+/telemetry/x',
      '+/+/+/+',
      'sites/#',
    ])
      expect(mayMatchTelemetry(f), f).toBe(false);
  });
});

describe('routing of telemetry through the broker', () => {
  let f: BrokerFixture;
  beforeAll(async () => {
    f = await startBrokerFixture({}, { ingest: {} });
  });
  afterAll(async () => {
    await f?.close();
  });

  it('acknowledges and stores telemetry without routing it, and routes it again once someone could listen', async () => {
    const cert = await f.addDevice('bd-route-1');
    const client = await f.connect(cert, { clientId: 'bd-route-1' });
    const base = Date.now() - 60_000;
    const reading = (seq: number) =>
      JSON.stringify({ seq, ts: new Date(base + seq * 1000).toISOString(), readings: { ph: 7 } });
    await client.publishAsync('devices/bd-route-1/telemetry', reading(1), { qos: 1 });
    // An in-process listener (an operator tool, a bridge) on every device's telemetry.
    const heard: string[] = [];
    await new Promise<void>((resolve) =>
      f.broker.aedes.subscribe(
        'devices/+/telemetry',
        (packet, done) => {
          heard.push(String(packet.payload));
          done();
        },
        resolve,
      ),
    );
    await client.publishAsync('devices/bd-route-1/telemetry', reading(2), { qos: 1 });
    await expect.poll(() => heard).toEqual([reading(2)]);
    client.end(true);
    const { rows } = await f.t.database.pool.query<{ seq: number }>(
      `SELECT seq::int FROM readings WHERE device_id = 'bd-route-1' ORDER BY seq`,
    );
    expect(rows.map((r) => r.seq)).toEqual([1, 2]);
  });
});
