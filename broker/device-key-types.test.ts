import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  requireTool,
  run,
  startBrokerFixture,
  type BrokerFixture,
} from '../test/broker-fixture.ts';

/**
 * Devices with ECDSA P-256 keys (secure elements) and RSA keys side by side, through a client
 * nobody here wrote: Debian's mosquitto_pub/mosquitto_sub (OpenSSL underneath). ADR 0002.
 */
let f: BrokerFixture;
beforeAll(async () => {
  f = await startBrokerFixture({}, { ingest: {} });
});
afterAll(async () => {
  await f?.close();
});

const stored = async (deviceId: string): Promise<number[]> =>
  (
    await f.t.database.pool.query<{ seq: number }>(
      `SELECT seq::int FROM readings WHERE device_id = $1 ORDER BY seq`,
      [deviceId],
    )
  ).rows.map((r) => r.seq);
const reading = (seq: number): string =>
  JSON.stringify({
    seq,
    ts: new Date(Date.now() - 60_000 + seq).toISOString(),
    readings: { ph: 7 },
  });
const pub = (deviceId: string, files: { ca: string; cert: string; key: string }, seq: number) =>
  run('mosquitto_pub', [
    '-h',
    '127.0.0.1',
    '-p',
    String(f.port),
    '--cafile',
    files.ca,
    '--cert',
    files.cert,
    '--key',
    files.key,
    '-i',
    deviceId,
    '-q',
    '1',
    '-t',
    `devices/${deviceId}/telemetry`,
    '-m',
    reading(seq),
  ]);

describe.each(['ec', 'rsa'] as const)('a device with an %s key', (keyType) => {
  it('connects with mosquitto_pub and its reading is stored', async () => {
    if (!requireTool('mosquitto_pub')) return;
    const id = `bd-keys-${keyType}`;
    const cert = await f.addDevice(id, { key: keyType });
    expect(new X509Certificate(cert.cert).publicKey.asymmetricKeyType).toBe(keyType);
    const res = await pub(id, f.files(cert), 1);
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    // QoS 1: PUBACK came after the commit, so the row is there.
    expect(await stored(id)).toEqual([1]);
  });
});

describe('a revoked EC device', () => {
  it('is cut off at once while connected (mosquitto_sub), and mosquitto_pub is refused afterwards with nothing stored', async () => {
    if (!requireTool('mosquitto_sub') || !requireTool('mosquitto_pub')) return;
    const id = 'bd-keys-ec-revoked';
    const cert = await f.addDevice(id, { key: 'ec' });
    const files = f.files(cert);
    expect((await pub(id, files, 1)).status).toBe(0);
    const sub = spawn('mosquitto_sub', [
      '-h',
      '127.0.0.1',
      '-p',
      String(f.port),
      '--cafile',
      files.ca,
      '--cert',
      files.cert,
      '--key',
      files.key,
      '-i',
      id,
      '-q',
      '1',
      '-t',
      `devices/${id}/errors`,
    ]);
    const exited = new Promise<number | null>((resolve) => sub.on('exit', resolve));
    try {
      await expect
        .poll(() => f.broker.clients().some((c) => c.deviceId === id), { timeout: 60_000 })
        .toBe(true);
      const disconnected = new Promise<void>((resolve) =>
        f.broker.aedes.on('clientDisconnect', (c) => c.id === id && resolve()),
      );
      await f.revoke(cert.serialHex);
      await disconnected;
      // mosquitto_sub reconnects by itself; the CRL and the registry refuse it every time.
      await expect
        .poll(() => f.broker.clients().some((c) => c.deviceId === id), { timeout: 60_000 })
        .toBe(false);
      const after = await pub(id, files, 2);
      expect(after.status).not.toBe(0);
      expect(await stored(id)).toEqual([1]);
    } finally {
      sub.kill();
      await exited;
    }
  }, 120_000);
});
