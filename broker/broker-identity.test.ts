import { spawn } from 'node:child_process';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createForeignCa } from '../test/forge-ca.ts';
import {
  connectOutcome as outcome,
  rawConnack,
  requireTool,
  run,
  startBrokerFixture,
  testBrokerConfig,
  type BrokerFixture,
} from '../test/broker-fixture.ts';

/**
 * A cut-off must come from the change notification, not from the periodic revalidation sweep
 * (testBrokerConfig.revalidateIntervalMs). Half the sweep's period tells the two apart on any
 * machine; how fast the notification path is on an idle one is for benchmarks, not tests.
 */
const notifiedWithinMs = testBrokerConfig.revalidateIntervalMs / 2;

let f: BrokerFixture;
beforeAll(async () => {
  f = await startBrokerFixture();
});
afterAll(async () => {
  await f?.close();
});

/**
 * An MQTT 3.1.1 CONNECT with an empty clientId and clean=false, written byte by byte (MQTT.js
 * refuses to send it; [MQTT-3.1.3-8] lets a broker accept it). Returns the CONNACK return code.
 */
function rawConnect(cert: { key: string; cert: string }): Promise<number | string> {
  const connect = Buffer.from([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x00, 0, 30, 0, 0]);
  return rawConnack(f, cert, connect);
}

describe('mTLS identity', () => {
  it('accepts a device with its own certificate over MQTT.js, and a pending device becomes active', async () => {
    const cert = await f.addDevice('bd-ident-ok', { status: 'pending' });
    const client = await f.connect(cert, { clientId: 'bd-ident-ok' });
    await client.publishAsync('devices/bd-ident-ok/telemetry', JSON.stringify({ seq: 1 }), {
      qos: 1,
    });
    await client.endAsync();
    expect(
      f.received.some(
        (r) => r.session.deviceId === 'bd-ident-ok' && r.session.certSerial === cert.serialHex,
      ),
    ).toBe(true);
    const { rows } = await f.t.database.pool.query(
      `SELECT status FROM devices WHERE id = 'bd-ident-ok'`,
    );
    expect(rows[0].status).toBe('active');
  });

  it('accepts mosquitto_pub with --cafile --cert --key', async () => {
    if (!requireTool('mosquitto_pub')) return;
    const cert = await f.addDevice('bd-ident-mosq');
    const files = f.files(cert);
    const res = await run('mosquitto_pub', [
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
      'bd-ident-mosq',
      '-q',
      '1',
      '-t',
      'devices/bd-ident-mosq/telemetry',
      '-m',
      '{"seq":7}',
    ]);
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    expect(
      f.received.some(
        (r) =>
          r.session.deviceId === 'bd-ident-mosq' && r.message.payload.toString() === '{"seq":7}',
      ),
    ).toBe(true);
  });

  it('refuses a TLS client without a certificate', async () => {
    const result = await new Promise<string>((resolve) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: f.port,
        ca: f.caPem,
        servername: 'localhost',
      });
      socket.on('secureConnect', () => socket.write(Buffer.from([0x10, 0x00])));
      socket.on('error', (err: NodeJS.ErrnoException) =>
        resolve(`error:${err.code ?? err.message}`),
      );
      socket.on('close', () => resolve('closed'));
    });
    expect(result).toMatch(
      /error:ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED|error:ECONNRESET|closed/,
    );
    // No MQTT session was ever made for it.
    expect(f.broker.clients().length).toBe(0);
  });

  it('refuses a certificate from another CA, and an expired one, in the TLS handshake', async () => {
    const foreign = createForeignCa('Evil CA').issue({ cn: 'bd-evil' });
    expect(await outcome(() => f.connect(foreign, { clientId: 'bd-evil' }))).toMatch(/^tls:/);
    const expired = await f.addDevice('bd-ident-expired', { expired: true });
    expect(await outcome(() => f.connect(expired, { clientId: 'bd-ident-expired' }))).toMatch(
      /^tls:/,
    );
  });

  it('refuses a revoked certificate: in the TLS handshake once the CRL is refreshed', async () => {
    const cert = await f.addDevice('bd-ident-revoked');
    await f.revoke(cert.serialHex);
    await new Promise((r) => setTimeout(r, 200)); // the revocation event re-reads the CRL
    expect(await outcome(() => f.connect(cert, { clientId: 'bd-ident-revoked' }))).toMatch(
      /^tls:|^connack:5$/,
    );
  });

  it('refuses a revoked certificate from the registry alone (stale CRL, lost notification) with CONNACK 5', async () => {
    const cert = await f.addDevice('bd-ident-revoked-db');
    // Revoked behind the broker's back: no NOTIFY, so its TLS CRL does not list the serial yet.
    await f.t.database.pool.query(
      `UPDATE certificates SET status = 'revoked', revoked_at = now(), revocation_reason = 1 WHERE serial = $1`,
      [cert.serialHex],
    );
    expect(await outcome(() => f.connect(cert, { clientId: 'bd-ident-revoked-db' }))).toBe(
      'connack:5',
    );
  });

  it('refuses clientId different from the certificate CN with CONNACK 2, and an empty clientId', async () => {
    const cert = await f.addDevice('bd-ident-cn');
    expect(await outcome(() => f.connect(cert, { clientId: 'bd-ident-other' }))).toBe('connack:2');
    expect(await rawConnect(cert)).toBe(2);
  });

  it('refuses a suspended device with CONNACK 5, and username/password never substitute for a certificate', async () => {
    const cert = await f.addDevice('bd-ident-susp', { status: 'suspended' });
    expect(await outcome(() => f.connect(cert, { clientId: 'bd-ident-susp' }))).toBe('connack:5');
    const ok = await f.addDevice('bd-ident-creds');
    expect(
      await outcome(() =>
        f.connect(ok, { clientId: 'bd-ident-creds', username: 'admin', password: 'admin' }),
      ),
    ).toBe('connack:4');
  });

  it('refuses TLS 1.1 (openssl s_client -tls1_1)', async () => {
    if (!requireTool('openssl')) return;
    // -cipher @SECLEVEL=0 so that our own OpenSSL is willing to offer TLS 1.1 at all: the refusal must come from the broker.
    const res = await run('openssl', [
      's_client',
      '-connect',
      `127.0.0.1:${f.port}`,
      '-tls1_1',
      '-cipher',
      'DEFAULT:@SECLEVEL=0',
    ]);
    expect(res.status).not.toBe(0);
    expect(`${res.stdout}${res.stderr}`).toMatch(
      /alert protocol version|unsupported protocol|wrong version number/i,
    );
  });

  it('records refused connections as security events', async () => {
    // Recorded off the hot path: the last refusal's event may still be on its way.
    const reasons = async (): Promise<string[]> =>
      (
        await f.t.database.pool.query(
          `SELECT actor_id, after FROM audit_log WHERE action = 'security.connect_refused'`,
        )
      ).rows.map((r: { after: { reason: string } }) => r.after.reason);
    await expect
      .poll(reasons)
      .toEqual(
        expect.arrayContaining([
          'certificate_revoked',
          'client_id_mismatch',
          'device_suspended',
          'credentials_not_accepted',
        ]),
      );
  });

  it('lists connected devices and keeps presence in the registry', async () => {
    const cert = await f.addDevice('bd-ident-presence');
    const client = await f.connect(cert, { clientId: 'bd-ident-presence' });
    expect(f.broker.clients().map((c) => c.deviceId)).toContain('bd-ident-presence');
    const presence = async (): Promise<{ online: boolean; seen: boolean }> => {
      const row = (
        await f.t.database.pool.query(
          `SELECT online, last_seen_at FROM devices WHERE id = 'bd-ident-presence'`,
        )
      ).rows[0];
      return { online: row.online, seen: row.last_seen_at !== null };
    };
    await expect.poll(presence).toMatchObject({ online: true });
    await client.endAsync();
    await expect.poll(presence).toEqual({ online: false, seen: true });
  });

  it('cuts off a live mosquitto_sub as soon as its certificate is revoked, and it cannot come back', async () => {
    if (!requireTool('mosquitto_sub')) return;
    const cert = await f.addDevice('bd-ident-cut');
    const files = f.files(cert);
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
      'bd-ident-cut',
      '-q',
      '1',
      '-t',
      'devices/bd-ident-cut/errors',
    ]);
    let stderr = '';
    sub.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => sub.on('exit', resolve));
    await expect
      .poll(() => f.broker.clients().some((c) => c.deviceId === 'bd-ident-cut'))
      .toBe(true);
    const disconnected = new Promise<number>((resolve) =>
      f.broker.aedes.once('clientDisconnect', () => resolve(Date.now())),
    );
    const revokedAt = Date.now();
    await f.revoke(cert.serialHex);
    expect((await disconnected) - revokedAt).toBeLessThan(notifiedWithinMs);
    // mosquitto_sub reconnects on its own; the registry refuses it, so it gives up.
    const code = await Promise.race([
      exited,
      new Promise<'running'>((r) => setTimeout(() => r('running'), 8000)),
    ]);
    sub.kill();
    expect(f.broker.clients().some((c) => c.deviceId === 'bd-ident-cut')).toBe(false);
    expect(code === 'running' ? stderr : code).not.toBe(0);
  }, 120_000);

  it('cuts off a device that is suspended while connected', async () => {
    const cert = await f.addDevice('bd-ident-susp-live');
    const client = await f.connect(cert, { clientId: 'bd-ident-susp-live' });
    const closed = new Promise<number>((resolve) =>
      client.once('close', () => resolve(Date.now())),
    );
    const at = Date.now();
    await f.setStatus('bd-ident-susp-live', 'suspended');
    expect((await closed) - at).toBeLessThan(notifiedWithinMs);
    expect(await outcome(() => f.connect(cert, { clientId: 'bd-ident-susp-live' }))).toBe(
      'connack:5',
    );
  }, 120_000);
});
