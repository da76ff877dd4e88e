import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../test/outage-fixture.ts';
import { connectPacket } from '../bench/mqtt-packets.ts';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';

let f: BrokerFixture;
/** Serials whose revocation the gateway has heard of (its listeners run before ours: registered first). */
const heard = new Set<string>();
beforeAll(async () => {
  f = await startBrokerFixture();
  f.events.on('certificate_revoked', (e) => heard.add(e.serial));
});
afterAll(async () => {
  await f?.close();
});

/** One mTLS connection offering `session`: whether TLS resumed it, the CONNACK code, the newest ticket. */
function attempt(
  cert: { key: string; cert: string },
  clientId: string,
  session: Buffer | undefined,
): Promise<{ reused: boolean; connack: number | string; session: Buffer | undefined }> {
  return new Promise((resolve) => {
    let ticket: Buffer | undefined;
    let reused = false;
    const socket = tls.connect(
      {
        host: '127.0.0.1',
        port: f.port,
        ca: f.caPem,
        key: cert.key,
        cert: cert.cert,
        servername: 'localhost',
        ...(session ? { session } : {}),
      },
      () => {
        reused = socket.isSessionReused();
        socket.write(connectPacket(clientId));
      },
    );
    socket.on('session', (s: Buffer) => (ticket = s));
    let got = Buffer.alloc(0);
    let connack: number | string = 'closed';
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length < 4) return;
      connack = got[0] === 0x20 ? got[3]! : `packet 0x${got[0]!.toString(16)}`;
      // A little longer on the socket, so that the ticket (sent after the handshake) is in.
      setTimeout(() => socket.destroy(), 100);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ reused, connack, session: ticket }));
  });
}

describe('TLS session resumption on the device listener', () => {
  it('resumes a device session with a ticket, and a resumed session is refused at CONNECT once the certificate is revoked', async () => {
    const cert = await f.addDevice('bd-resume-1', { status: 'active' });
    const first = await attempt(cert, 'bd-resume-1', undefined);
    expect(first).toMatchObject({ reused: false, connack: 0 });
    expect(first.session).toBeDefined();

    const resumed = await attempt(cert, 'bd-resume-1', first.session);
    expect(resumed).toMatchObject({ reused: true, connack: 0 });

    await f.revoke(cert.serialHex);
    // The gateway has heard of it (its CRL refreshed, so a full handshake would fail in TLS).
    await waitFor('the revocation reaches the gateway', () => heard.has(cert.serialHex));
    // The resumption skips the certificate and the CRL: the registry, read at CONNECT, refuses it.
    const after = await attempt(cert, 'bd-resume-1', resumed.session ?? first.session);
    expect(after).toMatchObject({ reused: true, connack: 5 });
  }, 120_000);
});
