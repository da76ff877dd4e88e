import { Writable } from 'node:stream';
import type mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { startTcpProxy, type TcpProxy } from '../test/tcp-proxy.ts';
import { createDeviceEvents, notifyDeviceEvent, type DeviceEvents } from './device-events.ts';

async function waitFor(what: string, probe: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function capturingLogger(): { logger: pino.Logger; count: (msg: string) => number } {
  const msgs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n'))
        if (l.trim()) msgs.push((JSON.parse(l) as { msg: string }).msg);
      cb();
    },
  });
  return {
    logger: pino({ level: 'info' }, sink),
    count: (msg) => msgs.filter((m) => m === msg).length,
  };
}

/** Attempts a single backoff loop (250 ms doubling to 10 s) can make within `ms`. */
function attemptsWithin(ms: number): number {
  let n = 1;
  for (let at = 0, delay = 250; at + delay <= ms; delay = Math.min(delay * 2, 10_000)) {
    at += delay;
    n++;
  }
  return n;
}

const server = (): { host: string; port: number } => {
  const u = new URL(inject('adminUrl'));
  return { host: u.hostname, port: Number(u.port || 5432) };
};

describe('device events across a lost database connection', () => {
  let t: TestDatabase;
  let proxy: TcpProxy;
  let events: DeviceEvents | undefined;
  beforeAll(async () => {
    t = await createTestDatabase();
    proxy = await startTcpProxy(server());
  });
  afterAll(async () => {
    await events?.close();
    await proxy?.close();
  });

  it('retries one attempt at a time with a growing delay, LISTENs again and asks for a resync', async () => {
    const { logger, count } = capturingLogger();
    events = createDeviceEvents({ url: proxy.url(t.url), logger });
    await events.ready;
    let resyncs = 0;
    events.on('resync', () => resyncs++);
    const revoked: string[] = [];
    events.on('certificate_revoked', (e) => revoked.push(e.serial));

    const cutAt = Date.now();
    await proxy.cut();
    await waitFor('the loss to be noticed', () => !events!.listening());
    await new Promise((r) => setTimeout(r, 4000));
    // One loop: an attempt at once, then after 250, 500, 1000, 2000 ms…; however slow the
    // machine, no more attempts than that schedule fits in the time since the cut. A second
    // reconnect loop (each failed attempt starting another) doubles them every round.
    const failed = count('device events: reconnect failed');
    expect(failed).toBeLessThanOrEqual(attemptsWithin(Date.now() - cutAt));
    expect(failed).toBeGreaterThanOrEqual(1);
    expect(resyncs).toBe(0);

    await proxy.restore();
    await waitFor('LISTEN again', () => events!.listening() && resyncs > 0);
    expect(resyncs).toBe(1);
    await notifyDeviceEvent(t.database.db, {
      type: 'certificate_revoked',
      serial: 'ab12',
      deviceId: 'd',
    });
    await waitFor('the notification after the reconnect', () => revoked.length === 1);
    expect(revoked).toEqual(['ab12']);
  }, 90_000);
});

describe('broker: a revocation missed while the event connection was down', () => {
  let f: BrokerFixture;
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await startTcpProxy(server());
    // The periodic safety net far away: only the resync can close the session in this test.
    f = await startBrokerFixture(
      { revalidateIntervalMs: 3_600_000 },
      { eventsUrl: (url) => proxy.url(url) },
    );
  });
  afterAll(async () => {
    await f?.close();
    await proxy?.close();
  });

  it('closes the revoked device session as soon as LISTEN is back', async () => {
    const revokedCert = await f.addDevice('bd-ev-revoked', { status: 'active' });
    const keptCert = await f.addDevice('bd-ev-kept', { status: 'active' });
    const revokedClient: mqtt.MqttClient = await f.connect(revokedCert, {
      clientId: 'bd-ev-revoked',
    });
    const keptClient: mqtt.MqttClient = await f.connect(keptCert, { clientId: 'bd-ev-kept' });
    let revokedClosed = false;
    let keptClosed = false;
    revokedClient.on('close', () => (revokedClosed = true));
    keptClient.on('close', () => (keptClosed = true));

    await proxy.cut();
    await waitFor('the event connection to be down', () => !f.events.listening());
    await f.revoke(revokedCert.serialHex); // its NOTIFY reaches nobody
    await new Promise((r) => setTimeout(r, 500));
    expect(revokedClosed).toBe(false);

    await proxy.restore();
    await waitFor('the revoked session to be closed', () => revokedClosed, 60_000);
    expect(keptClosed).toBe(false);
    expect(f.broker.clients().map((c) => c.deviceId)).toEqual(['bd-ev-kept']);
    keptClient.end(true);
  }, 120_000);
});
