import tls from 'node:tls';
import type { MqttClient } from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unescapeDeviceText } from '../audit/index.ts';
import { startBrokerFixture, type BrokerFixture, type DeviceCert } from '../test/broker-fixture.ts';

/**
 * Security events under attack, over real mTLS with the real broker, registry and ingest: a flood
 * of refusals must neither take the connections a legitimate device needs nor write a row per
 * refusal, and text a device sends (NUL included) is recorded, not lost with a failed insert.
 */
let f: BrokerFixture;
beforeAll(async () => {
  // A window far longer than the test: the record counts do not depend on how fast it runs.
  f = await startBrokerFixture(
    { maxPacketBytes: 1024 * 1024 },
    { ingest: {}, securityEvents: { windowMs: 3_600_000 } },
  );
});
afterAll(async () => {
  await f?.close();
});

/**
 * Blocks every insert into audit_log from another session (reads go on): while it is held, not a
 * single security event can be written, so anything that completes meanwhile did not wait for one.
 */
async function blockAuditWrites(): Promise<() => Promise<void>> {
  const c = new pg.Client({ connectionString: f.t.url });
  await c.connect();
  await c.query('BEGIN');
  await c.query('LOCK TABLE audit_log IN EXCLUSIVE MODE');
  return async () => {
    await c.query('COMMIT');
    await c.end();
  };
}

type Row = {
  target_id: string;
  after: { count: number; reason: string; samples: { text: string }[] };
};
async function records(action: string, actorId: string): Promise<Row[]> {
  const { rows } = await f.t.database.pool.query<Row>(
    `SELECT target_id, after FROM audit_log WHERE action = $1 AND actor_id = $2 ORDER BY id`,
    [action, actorId],
  );
  return rows;
}

/** Connects, publishes one reading at QoS 1 and waits for its PUBACK; the time it took. */
async function connectAndPublish(cert: DeviceCert, id: string, seq: number): Promise<number> {
  const started = performance.now();
  const client = await f.connect(cert, { clientId: id, connectTimeout: 60_000 });
  await client.publishAsync(
    `devices/${id}/telemetry`,
    JSON.stringify({
      seq,
      ts: new Date(Date.now() - (10 - seq) * 1000).toISOString(),
      readings: { temperature_c: 35 },
    }),
    { qos: 1 },
  );
  const ms = performance.now() - started;
  await client.endAsync();
  return ms;
}

/** Sends `filters` in SUBSCRIBE packets of `perPacket`; resolves when every SUBACK is in. */
async function subscribeAll(
  client: MqttClient,
  filters: string[],
  perPacket: number,
): Promise<number[]> {
  const granted: number[] = [];
  await Promise.all(
    Array.from({ length: Math.ceil(filters.length / perPacket) }, (_, i) =>
      client.subscribeAsync(filters.slice(i * perPacket, (i + 1) * perPacket), { qos: 1 }).then(
        (g) => granted.push(...g.map((x) => x.qos)),
        (err: { packet?: { granted: number[] } }) => granted.push(...(err.packet?.granted ?? [])), // MQTT.js rejects on 0x80
      ),
    ),
  );
  return granted;
}

describe('a flood of refusals', () => {
  it('10,000 refused filters: a legitimate device connects and gets its PUBACK before a single refusal could be written, and they are recorded as counts', async () => {
    const legit = await f.addDevice('bd-flood-legit', { status: 'active' });
    const attackerCert = await f.addDevice('bd-flood-attacker', { status: 'active' });
    await connectAndPublish(legit, 'bd-flood-legit', 1); // warm-up (first TLS handshake, JIT)
    const controlMs = await connectAndPublish(legit, 'bd-flood-legit', 2); // no flood: for the report
    const attacker = await f.connect(attackerCert, { clientId: 'bd-flood-attacker' });
    const filters = Array.from({ length: 10_000 }, (_, i) => `devices/bd-victim-${i}/errors`);

    const release = await blockAuditWrites();
    let floodMs: number;
    try {
      const granted = await subscribeAll(attacker, filters, 2500);
      expect(granted).toHaveLength(10_000);
      expect(granted.every((q) => q === 128)).toBe(true);
      // The legitimate device: a fresh CONNECT (a registry lookup) and a reading stored by ingest.
      floodMs = await connectAndPublish(legit, 'bd-flood-legit', 3);
      // Still nothing written: the device did not wait for the flood's records.
      expect(await records('security.subscribe_denied', 'device:bd-flood-attacker')).toHaveLength(
        0,
      );
    } finally {
      await release();
    }
    console.info(
      `legitimate CONNECT + PUBACK: ${controlMs.toFixed(0)} ms alone, ${floodMs.toFixed(0)} ms after 10,000 refused filters with the audit store blocked`,
    );
    await attacker.endAsync();

    await f.securityEvents.flush();
    const written = await records('security.subscribe_denied', 'device:bd-flood-attacker');
    expect(written.length).toBeLessThanOrEqual(2); // the first at once, the rest as one count
    expect(written.reduce((n, r) => n + r.after.count, 0)).toBe(10_000);
    expect(
      written.every((r) => r.after.reason === 'not_own_topic' && r.after.samples.length >= 1),
    ).toBe(true);
    expect(f.securityEvents.counters.events['security.subscribe_denied']).toBeGreaterThanOrEqual(
      10_000,
    );
    const stored = await f.t.database.pool.query(
      `SELECT count(*)::int AS n FROM readings WHERE device_id = 'bd-flood-legit'`,
    );
    expect(stored.rows[0].n).toBe(3);
  });
});

describe('device text in security events', () => {
  it('records a refused filter and a refused publish whose topics hold a NUL byte, escaped and readable (raw packets over mTLS)', async () => {
    const cert = await f.addDevice('bd-flood-nul', { status: 'active' });
    const client = await f.connect(cert, { clientId: 'bd-flood-nul' });
    // MQTT.js refuses such topics itself: the packets are written as bytes on its connection.
    const filter = 'devices/bd-other/\u0000errors';
    const topic = 'devices/bd-other/\u0000telemetry';
    const str = (s: string): Buffer =>
      Buffer.concat([Buffer.from([0, Buffer.byteLength(s)]), Buffer.from(s)]);
    const subscribe = Buffer.concat([Buffer.from([0, 7]), str(filter), Buffer.from([1])]);
    const publish = Buffer.concat([str(topic), Buffer.from([0, 8]), Buffer.from('{}')]);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.stream.write(
      Buffer.concat([
        Buffer.from([0x82, subscribe.length]),
        subscribe,
        Buffer.from([0x32, publish.length]),
        publish,
      ]),
    );
    await closed; // the refused publish closes the connection
    client.end(true);
    await f.securityEvents.flush();
    const sub = await records('security.subscribe_denied', 'device:bd-flood-nul');
    expect(sub.map((r) => unescapeDeviceText(r.target_id))).toEqual([filter]);
    expect(sub[0]!.target_id).toBe('devices/bd-other/\\u0000errors');
    const pub = await records('security.publish_denied', 'device:bd-flood-nul');
    expect(pub.map((r) => unescapeDeviceText(r.target_id))).toEqual([topic]);
    expect(f.securityEvents.counters.writeFailures).toBe(0);
  });

  it('records a CONNECT refused for a client id with a NUL byte (raw MQTT over mTLS)', async () => {
    const cert = await f.addDevice('bd-flood-cid', { status: 'active' });
    const id = Buffer.from('bd-flood-cid\u0000x');
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
    const returnCode = await new Promise<number | string>((resolve) => {
      const socket = tls.connect(
        {
          host: '127.0.0.1',
          port: f.port,
          ca: f.caPem,
          key: cert.key,
          cert: cert.cert,
          servername: 'localhost',
        },
        () => socket.write(Buffer.concat([Buffer.from([0x10, variable.length]), variable])),
      );
      socket.on('data', (d: Buffer) => {
        resolve(d[0] === 0x20 ? d[3]! : `packet 0x${d[0]?.toString(16)}`);
        socket.destroy();
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve('closed'));
    });
    expect(returnCode).toBe(2); // identifier rejected: not the certificate's CN
    await f.securityEvents.flush();
    const refused = await records('security.connect_refused', 'device:bd-flood-cid');
    expect(refused.map((r) => [r.after.reason, unescapeDeviceText(r.target_id)])).toEqual([
      ['client_id_mismatch', 'bd-flood-cid\u0000x'],
    ]);
  });
});
