import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFirmwareDownloadServer } from '../firmware/download-server.ts';
import { createApiHarness, type ApiHarness } from '../test/api-harness.ts';
import { testLogger } from '../test/db.ts';
import { createForeignCa, type IssuedCert } from '../test/forge-ca.ts';
import { requireTool } from '../test/tools.ts';
import { selfSignedCertificate } from './dev-cert.ts';

/**
 * Both HTTPS listeners (the operator API and the firmware download server) offer, in TLS 1.2,
 * only forward-secret AEAD suites (issue 17 §5): a client that offers only static-RSA key
 * exchange or CBC suites gets no handshake. Real sockets, node's client and openssl's.
 */
const REFUSED = [
  'AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-SHA256',
  'AES128-SHA',
  'ECDHE-RSA-AES128-SHA',
  'ECDHE-RSA-AES256-SHA384',
  'DHE-RSA-AES128-GCM-SHA256',
];
const ACCEPTED = [
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

let h: ApiHarness;
let apiPort: number;
let downloads: ReturnType<typeof createFirmwareDownloadServer>;
let downloadPort: number;
let client: IssuedCert;

beforeAll(async () => {
  h = await createApiHarness({ https: selfSignedCertificate('localhost', 1) });
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  apiPort = (h.app.server.address() as AddressInfo).port;
  const ca = createForeignCa('Suites Test CA');
  const server = ca.issue({
    cn: 'localhost',
    usage: 'serverAuth',
    dnsNames: ['localhost', '127.0.0.1'],
  });
  client = ca.issue({ cn: 'bd-suites-1' });
  downloads = createFirmwareDownloadServer({
    tls: { key: server.key, cert: server.cert, ca: [ca.caPem] },
    // The handshake is what is tested; no device is ever found, so nothing is served.
    identity: { connectionIdentity: () => Promise.resolve(undefined) },
    firmware: { download: () => Promise.reject(new Error('not reached')) },
    // Refused handshakes are recorded elsewhere (broker/tls-refusal.test.ts); here only the suites.
    securityEvents: { record: () => undefined },
    logger: testLogger,
  });
  downloadPort = await downloads.listen(0, '127.0.0.1');
}, 60_000);

afterAll(async () => {
  await downloads?.close();
});

/** TLS 1.2 handshake offering exactly one suite: the suite agreed, or the error. */
function handshake(
  port: number,
  cipher: string,
  withClientCert: boolean,
): Promise<{ cipher?: string; error?: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
      ciphers: cipher,
      rejectUnauthorized: false,
      ...(withClientCert ? { key: client.key, cert: client.cert } : {}),
    });
    socket.once('secureConnect', () => {
      const agreed = socket.getCipher().name;
      socket.destroy();
      resolve({ cipher: agreed });
    });
    socket.once('error', (err) => resolve({ error: err.message }));
  });
}

const listeners = [
  { name: 'operator API', port: () => apiPort, clientCert: false },
  { name: 'firmware download server', port: () => downloadPort, clientCert: true },
];

describe.each(listeners)('$name, TLS 1.2', ({ port, clientCert }) => {
  it.each(REFUSED)('refuses a client offering only %s', async (cipher) => {
    const res = await handshake(port(), cipher, clientCert);
    expect(res.cipher).toBeUndefined();
    expect(res.error).toMatch(
      /handshake failure|no shared cipher|sslv3 alert|wrong version|ECONNRESET/i,
    );
  });

  it.each(ACCEPTED)('agrees on %s', async (cipher) => {
    const res = await handshake(port(), cipher, clientCert);
    expect(res).toEqual({ cipher });
  });
});

/** openssl s_client, asynchronously: the servers run in this process and must keep answering. */
function sClient(port: number, cipher: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-tls1_2',
        '-cipher',
        cipher,
        '-servername',
        'localhost',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
    child.stdin.end();
  });
}

describe('a TLS client nobody here wrote (openssl s_client)', () => {
  it('cannot agree on a non-forward-secret suite with either listener; can on an ECDHE-GCM one', async () => {
    if (!requireTool('openssl')) return;
    for (const port of [apiPort, downloadPort]) {
      const refused = await sClient(port, 'AES128-GCM-SHA256');
      expect(refused.code, refused.out).not.toBe(0);
      expect(refused.out).toMatch(/handshake failure|Cipher is \(NONE\)/i);
    }
    const ok = await sClient(apiPort, 'ECDHE-RSA-AES128-GCM-SHA256');
    expect(ok.out).toMatch(/Cipher is ECDHE-RSA-AES128-GCM-SHA256/);
  });
});
