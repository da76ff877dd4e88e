import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';
import { deviceKeyAndCsr } from '../test/device-keys.ts';

let f: BrokerFixture;
beforeAll(async () => {
  f = await startBrokerFixture();
});
afterAll(async () => {
  await f?.close();
});

const admin = { actorId: 'test-admin', actorRole: 'admin' };

describe('certificate renewal over the device’s own mTLS session', () => {
  it('refuses outside the window, renews after a technician asks, then retires the old certificate after the overlap', async () => {
    const old = await f.addDevice('bd-renew-1');
    const client = await f.connect(old, { clientId: 'bd-renew-1' });
    await client.subscribeAsync('devices/bd-renew-1/cert/issued', { qos: 1 });
    const replies: Record<string, unknown>[] = [];
    client.on('message', (_topic, payload) =>
      replies.push(JSON.parse(payload.toString()) as Record<string, unknown>),
    );
    const next = (): Promise<Record<string, unknown>> =>
      new Promise((resolve) => {
        const n = replies.length;
        const timer = setInterval(() => {
          if (replies.length > n) {
            clearInterval(timer);
            resolve(replies[n]!);
          }
        }, 10);
      });

    // 30 days of validity in this fixture, a 30-day window: inside it by a hair, so move the clock back.
    f.clock.value = new Date(Date.now() - 2 * 86_400_000);
    const fresh = deviceKeyAndCsr('bd-renew-1');
    let reply = next();
    await client.publishAsync('devices/bd-renew-1/cert/csr', fresh.csr, { qos: 1 });
    expect(await reply).toMatchObject({ error: { code: 'RENEWAL_NOT_ALLOWED' } });
    f.clock.value = undefined;

    const wrongCn = deviceKeyAndCsr('bd-someone-else');
    await f.pki.requestRotation('bd-renew-1', admin);
    reply = next();
    await client.publishAsync('devices/bd-renew-1/cert/csr', wrongCn.csr, { qos: 1 });
    expect(await reply).toMatchObject({ error: { code: 'CSR_CN_MISMATCH' } });

    reply = next();
    await client.publishAsync('devices/bd-renew-1/cert/csr', fresh.csr, { qos: 1 });
    const issued = (await reply) as { serial: string; certificate: string; chain: string };
    expect(issued.certificate).toMatch(/BEGIN CERTIFICATE/);
    expect(issued.serial).not.toBe(old.serialHex);
    await client.endAsync();

    // Both work during the overlap.
    const renewed = await f.connect(
      { key: fresh.key, cert: issued.certificate },
      { clientId: 'bd-renew-1' },
    );
    await renewed.endAsync();
    expect(await f.pki.retireSuperseded()).toEqual([]);
    const stillOld = await f.connect(old, { clientId: 'bd-renew-1' });
    await stillOld.endAsync();

    // After the overlap (24 h) the old one is revoked as superseded.
    f.clock.value = new Date(Date.now() + 25 * 3_600_000);
    expect(await f.pki.retireSuperseded()).toEqual([old.serialHex]);
    f.clock.value = undefined;
    const { rows } = await f.t.database.pool.query(
      `SELECT serial, status, revocation_reason FROM certificates WHERE device_id = 'bd-renew-1' ORDER BY issued_at`,
    );
    expect(rows).toEqual([
      { serial: old.serialHex, status: 'revoked', revocation_reason: 4 },
      { serial: issued.serial, status: 'active', revocation_reason: null },
    ]);
    const rotation = await f.t.database.pool.query(
      `SELECT rotation_requested FROM devices WHERE id = 'bd-renew-1'`,
    );
    expect(rotation.rows[0].rotation_requested).toBe(false);
  });
});
