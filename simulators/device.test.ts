import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';
import { startDevice } from './device.ts';
import { keyTypeOf } from './keys.ts';
import { mulberry32 } from './random.ts';

let f: BrokerFixture;
beforeAll(async () => {
  f = await startBrokerFixture({}, { ingest: {} });
});
afterAll(async () => {
  await f?.close();
});

// Generous: the whole suite shares two cores with this test.
const until = async (
  cond: () => boolean | Promise<boolean>,
  what: () => string,
  ms = 60_000,
): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe.each(['ec', 'rsa'] as const)('simulated device with a %s key', (keyType) => {
  it('keeps readings in its outbox through an outage, uploads the backlog as a batch, and renews its certificate in the window with a new key of its type', async () => {
    const id = `bd-simdev-${keyType}`;
    // Issued a day ago for 30 days: 29 days left, inside the device's 29.5-day threshold, so it
    // renews once; the renewed certificate (30 days left) is outside it, so it renews only once.
    f.clock.value = new Date(Date.now() - 86_400_000);
    const cert = await f.addDevice(id, { key: keyType });
    f.clock.value = undefined;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'thamani-simdev-'));
    const device = await startDevice({
      identity: { id, kind: 'biodigester', key: cert.key, cert: cert.cert, serial: cert.serialHex },
      dir,
      url: `mqtts://localhost:${f.port}`,
      ca: f.caPem,
      rand: mulberry32(1),
      renewWithinDays: 29.5,
    });
    await until(
      () => device.renewals.completed === 1,
      () => JSON.stringify(device.renewals),
    );
    const renewed = JSON.parse(readFileSync(path.join(dir, 'identity.json'), 'utf8')) as {
      serial: string;
      key: string;
      cert: string;
    };
    expect(renewed.serial).not.toBe(cert.serialHex);
    expect(renewed.key).not.toBe(cert.key);
    expect(keyTypeOf(renewed.key)).toBe(keyType);
    expect(new X509Certificate(renewed.cert).publicKey.asymmetricKeyType).toBe(keyType);
    await until(
      () => device.connected(),
      () => 'reconnect with the renewed certificate',
    );

    await device.record({ ph: 7.1 }, new Date(Date.now() - 60_000));
    await until(
      () => device.stats.acked === 1,
      () => JSON.stringify(device.stats),
    );
    // Outage: the broker stops reading (as when ingest is saturated) and the device keeps recording.
    f.broker.backpressure.hold();
    for (let i = 0; i < 5; i++)
      await device.record({ ph: 7 + i / 10 }, new Date(Date.now() - 50_000 + i * 1000));
    expect(await device.pendingCount()).toBeGreaterThanOrEqual(5);
    device.drop();
    f.broker.backpressure.release();
    await until(
      () => device.stats.acked === 6,
      () =>
        `${JSON.stringify({ ...device.stats, ackedTs: undefined })} connected=${device.connected()}`,
    );
    expect(await device.pendingCount()).toBe(0);
    const batches = f.received.filter(
      (r) => r.session.deviceId === id && r.message.payload.toString().startsWith('{"batch"'),
    );
    expect(batches.length).toBeGreaterThanOrEqual(1);
    const { rows } = await f.t.database.pool.query(
      `SELECT count(*)::int AS n FROM readings WHERE device_id = $1`,
      [id],
    );
    expect(rows[0].n).toBe(6);
    expect(device.renewals.completed).toBe(1);
    await device.stop();
  }, 240_000);
});
