import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../audit/index.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { createQuarantineService } from '../ingest/quarantine-service.ts';
import type { DeviceSession } from './types.ts';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';

/**
 * The guard around device input (input-guard.ts), over real mTLS with real ingest: a bug in a
 * handler costs the message it failed on (kept as INTERNAL_REJECT, acknowledged, explained), not
 * the connection, the device's later messages, or the process.
 */

const until = async <T>(
  probe: () => Promise<T | undefined> | T | undefined,
  what: string,
  ms = 20_000,
): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe('a handler that fails on a message', () => {
  let f: BrokerFixture;
  let client: MqttClient;
  const errors: {
    topic: string;
    quarantineIds: number[];
    reasons: { code: string; message: string }[];
  }[] = [];
  beforeAll(async () => {
    f = await startBrokerFixture(
      {},
      {
        ingest: {},
        // Faults planted where a bug would sit: a sync throw, an async one, one in the hot path.
        state: (_session, message) => {
          const text = message.payload.toString();
          if (text === 'sync') throw new TypeError('planted sync fault');
          if (text === 'async') return Promise.reject(new RangeError('planted async fault'));
          if (text === 'outage')
            return Promise.reject(
              Object.assign(new Error('terminating connection due to administrator command'), {
                code: '57P01',
              }),
            );
          return Promise.resolve();
        },
        beforeTelemetry: (message) => {
          if (message.payload.toString() === 'explode')
            throw new SyntaxError('planted telemetry fault');
        },
      },
    );
    const cert = await f.addDevice('bd-guard');
    client = await f.connect(cert, { clientId: 'bd-guard' });
    client.on('message', (_t, payload) =>
      errors.push(JSON.parse(payload.toString()) as (typeof errors)[number]),
    );
    await client.subscribeAsync('devices/bd-guard/errors', { qos: 1 });
  }, 60_000);
  afterAll(async () => {
    client?.end(true);
    await f?.close();
  });

  it.each([
    ['state', 'sync', 'TypeError'],
    ['state', 'async', 'RangeError'],
    ['telemetry', 'explode', 'SyntaxError'],
  ])(
    'on %s (%s throw): INTERNAL_REJECT with the error class, acknowledged, explained, counted',
    async (suffix, payload, errorClass) => {
      const topic = `devices/bd-guard/${suffix}`;
      await client.publishAsync(topic, payload, { qos: 1 }); // resolves on the PUBACK
      const { rows } = await f.t.database.pool.query<{
        id: string;
        reasons: { code: string; message: string }[];
        payload: Buffer;
      }>(`SELECT id, reasons, payload FROM quarantine WHERE topic = $1 AND payload = $2`, [
        topic,
        Buffer.from(payload),
      ]);
      expect(rows).toHaveLength(1);
      expect(rows[0]!.reasons).toEqual([
        expect.objectContaining({
          code: 'INTERNAL_REJECT',
          message: expect.stringContaining(errorClass),
        }),
      ]);
      const told = await until(
        () => errors.find((e) => e.quarantineIds.includes(Number(rows[0]!.id))),
        'the errors message',
      );
      expect(told).toMatchObject({ topic, reasons: [{ code: 'INTERNAL_REJECT' }] });
      expect([...f.broker.internalRejects.values()]).toContainEqual({
        topic: suffix,
        error: errorClass,
        n: 1,
      });
      expect(f.ingest!.counters.rejected.INTERNAL_REJECT).toBeGreaterThan(0);
      // The connection stays; the next message is stored.
      expect(client.connected).toBe(true);
      const ts = new Date(Date.now() - 60_000 + Math.floor(Math.random() * 50_000)).toISOString();
      await client.publishAsync(
        'devices/bd-guard/telemetry',
        JSON.stringify({ seq: Date.now(), ts, readings: { ph: 7 } }),
        { qos: 1 },
      );
      const stored = await f.t.database.pool.query(
        `SELECT 1 FROM readings WHERE device_id = 'bd-guard' AND ts = $1`,
        [ts],
      );
      expect(stored.rowCount).toBe(1);
    },
  );

  it('lets a technician replay a telemetry INTERNAL_REJECT through ingest, and refuses to replay one of state', async () => {
    const svc = createQuarantineService({
      db: f.t.database.db,
      ingest: f.ingest!,
      audit: createAuditLog({ db: f.t.database.db, signer: testAuditSigner }),
    });
    const items = await svc.list({ deviceId: 'bd-guard', status: 'open' });
    const telemetry = items.find(
      (i) => i.topic.endsWith('/telemetry') && i.reasons[0]!.code === 'INTERNAL_REJECT',
    )!;
    const state = items.find((i) => i.topic.endsWith('/state'))!;
    // Ingest itself (not the planted fault in front of it) judges the kept payload: not JSON.
    expect(
      await svc.replay(telemetry.id, { actorId: 'tech-1', actorRole: 'technician' }),
    ).toMatchObject({
      status: 'open',
      stillRejected: [expect.objectContaining({ code: 'MALFORMED_JSON' })],
    });
    expect(
      await svc
        .replay(state.id, { actorId: 'tech-1', actorRole: 'technician' })
        .catch((e: { code: string }) => e.code),
    ).toBe('QUARANTINE_NOT_OPEN');
  });

  it('withholds the PUBACK of a failure a re-send can cure (an outage), and quarantines nothing', async () => {
    const cert = await f.addDevice('bd-guard-outage');
    const c = await f.connect(cert, { clientId: 'bd-guard-outage' });
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.publish('devices/bd-guard-outage/state', 'outage', { qos: 1 });
    await closed; // no negative PUBACK in MQTT 3.1.1: the connection is closed [MQTT-3.3.5-2]
    c.end(true);
    const { rowCount } = await f.t.database.pool.query(
      `SELECT 1 FROM quarantine WHERE device_id = 'bd-guard-outage'`,
    );
    expect(rowCount).toBe(0);
  });

  it("routes a throw on a device's first message after start (after its seq is loaded) to the guard, not to an unhandled rejection", async () => {
    // A kind no device has: parsing throws inside the continuation of the first seq lookup, where
    // the RangeError of issue 16 was thrown.
    const session: DeviceSession = {
      deviceId: 'bd-never-seen',
      unitId: '00000000-0000-0000-0000-000000000000',
      kind: 'teapot' as DeviceSession['kind'],
      certSerial: 'x',
      certFingerprint: 'x',
      clientId: 'x',
      remoteAddress: undefined,
    };
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const outcome = await Promise.race([
        new Promise<Error | null>((resolve) =>
          f.ingest!.handleTelemetry.callback(
            session,
            {
              topic: 'devices/bd-never-seen/telemetry',
              suffix: 'telemetry',
              payload: Buffer.from(
                JSON.stringify({
                  seq: 1,
                  ts: new Date(Date.now() - 60_000).toISOString(),
                  readings: { ph: 7 },
                }),
              ),
              qos: 1,
              receivedAt: new Date(),
            },
            resolve,
          ),
        ),
        until(() => (unhandled.length > 0 ? ('unhandled' as const) : undefined), 'an outcome'),
      ]);
      expect(unhandled).toEqual([]);
      expect(outcome).toBeInstanceOf(TypeError); // not NotAcknowledged: the guard keeps it as INTERNAL_REJECT
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
