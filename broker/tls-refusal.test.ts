import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiHarness, type ApiHarness } from '../test/api-harness.ts';
import { createForeignCa } from '../test/forge-ca.ts';
import { createDashboardQueries } from '../dashboards/dashboard-repo.ts';
import { dashboardPages } from '../dashboards/page-routes.ts';
import { timeseriesInfo } from '../db/timeseries.ts';
import { normaliseFingerprint, normaliseSerial } from './identity-fns.ts';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';

/**
 * TLS handshake refusals over real mTLS: each is recorded with its reason and the certificate
 * presented (serial, fingerprint, and the device when the certificate is ours), aggregated; and
 * no socket whose certificate did not verify ever reaches Aedes, whatever it sends.
 */
let f: BrokerFixture;
/** The operator API (dashboards) on the broker's database: what a technician sees. */
let api: ApiHarness;
beforeAll(async () => {
  // A window far longer than the test: the record counts do not depend on how fast it runs.
  f = await startBrokerFixture({}, { securityEvents: { windowMs: 3_600_000 } });
  const queries = createDashboardQueries({ mode: (await timeseriesInfo(f.t.database.pool)).mode });
  api = await createApiHarness(
    { routes: ({ db }) => [{ plugin: dashboardPages({ db, queries }), root: true }] },
    { t: f.t },
  );
}, 120_000);
afterAll(async () => {
  await f?.close();
});

interface TlsRecord {
  actor_id: string;
  target_type: string;
  ip: string | null;
  after: {
    reason: string;
    count: number;
    certSerial: string | null;
    certFingerprint: string | null;
    issuerCn: string | null;
    samples: { text: string }[];
  };
}

async function tlsRefusals(where: string, params: unknown[]): Promise<TlsRecord[]> {
  await f.securityEvents.flush();
  const { rows } = await f.t.database.pool.query<TlsRecord>(
    `SELECT actor_id, target_type, host(ip) AS ip, after FROM audit_log WHERE action = 'security.tls_refused' AND ${where} ORDER BY id`,
    params,
  );
  return rows;
}

const fingerprint = (pem: string): string =>
  normaliseFingerprint(new X509Certificate(pem).fingerprint256);
const total = (rows: TlsRecord[]): number => rows.reduce((n, r) => n + r.after.count, 0);

/**
 * A raw mTLS client that, the moment its handshake completes, writes a CONNECT, a QoS 1 PUBLISH
 * and a SUBSCRIBE in one go; reports whether the server sent anything back before closing.
 */
function knock(
  cert: { key: string; cert: string } | undefined,
  clientId: string,
  maxVersion: tls.SecureVersion = 'TLSv1.3',
): Promise<{ handshake: boolean; received: number }> {
  const id = Buffer.from(clientId);
  const connectVar = Buffer.from([
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
  const topic = Buffer.from(`devices/${clientId}/telemetry`);
  const payload = Buffer.from('{"seq":1,"readings":{"ph":7}}');
  const publishVar = Buffer.concat([
    Buffer.from([0, topic.length]),
    topic,
    Buffer.from([0, 1]),
    payload,
  ]);
  const filter = Buffer.from(`devices/${clientId}/errors`);
  const subVar = Buffer.concat([Buffer.from([0, 2, 0, filter.length]), filter, Buffer.from([1])]);
  const bytes = Buffer.concat([
    Buffer.from([0x10, connectVar.length]),
    connectVar,
    Buffer.from([0x32, publishVar.length]),
    publishVar,
    Buffer.from([0x82, subVar.length]),
    subVar,
  ]);
  return new Promise((resolve) => {
    let handshake = false;
    let received = 0;
    const socket = tls.connect(
      {
        host: '127.0.0.1',
        port: f.port,
        ca: f.caPem,
        servername: 'localhost',
        maxVersion,
        ...(cert ? { key: cert.key, cert: cert.cert } : {}),
      },
      () => {
        handshake = true;
        socket.write(bytes);
      },
    );
    socket.on('data', (d: Buffer) => {
      received += d.length;
      socket.destroy(); // anything at all is an answer
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ handshake, received }));
  });
}

describe('TLS handshake refusals', () => {
  it('records a revoked certificate knocking again and again: one aggregated record with its serial, fingerprint and device', async () => {
    const cert = await f.addDevice('bd-tls-revoked', { status: 'active' });
    await f.revoke(cert.serialHex);
    await f.broker.refreshCrl(); // as the revocation event does
    for (let i = 0; i < 6; i++) expect((await knock(cert, 'bd-tls-revoked')).received).toBe(0);
    const rows = await tlsRefusals(`after->>'certSerial' = $1`, [normaliseSerial(cert.serialHex)]);
    expect(rows.length).toBeLessThanOrEqual(2);
    expect(total(rows)).toBe(6);
    expect(rows[0]).toMatchObject({
      actor_id: 'device:bd-tls-revoked',
      target_type: 'tls',
      ip: '127.0.0.1',
      after: { reason: 'CERT_REVOKED', certFingerprint: fingerprint(cert.cert) },
    });
    // A technician sees it on the device's fleet page (technicians do not read the audit log).
    const page = await api.app.inject({
      method: 'GET',
      url: '/fleet/bd-tls-revoked',
      headers: { authorization: `Bearer ${await api.tokenFor('technician')}` },
    });
    expect(page.statusCode).toBe(200);
    const section = page.body.slice(page.body.indexOf('Security events'));
    expect(section).toContain('tls refused');
    expect(section).toContain('CERT_REVOKED');
    expect(section).toContain(normaliseSerial(cert.serialHex));
  });

  it('records a certificate from a foreign CA with its serial and fingerprint, and a client without a certificate by its address', async () => {
    const foreign = createForeignCa('Evil CA').issue({ cn: 'bd-tls-evil' });
    for (let i = 0; i < 3; i++)
      expect((await knock(foreign, 'bd-tls-evil', i % 2 ? 'TLSv1.2' : 'TLSv1.3')).received).toBe(0);
    const evil = await tlsRefusals(`after->>'certSerial' = $1`, [
      normaliseSerial(foreign.serialHex),
    ]);
    expect(total(evil)).toBe(3);
    expect(evil[0]).toMatchObject({
      actor_id: `cert:${normaliseSerial(foreign.serialHex)}`,
      after: {
        certFingerprint: fingerprint(foreign.cert),
        issuerCn: 'Evil CA',
        samples: [{ text: 'bd-tls-evil' }],
      },
    });
    expect(evil[0]!.after.reason).toMatch(
      /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)$/,
    );

    const before = total(await tlsRefusals(`after->>'reason' = 'NO_CERTIFICATE'`, []));
    for (let i = 0; i < 2; i++) expect((await knock(undefined, 'bd-tls-none')).received).toBe(0);
    const none = await tlsRefusals(`after->>'reason' = 'NO_CERTIFICATE'`, []);
    expect(total(none) - before).toBe(2);
    expect(none.at(-1)).toMatchObject({ actor_id: 'ip:127.0.0.1', after: { certSerial: null } });
  });

  it('records an expired certificate of ours with its device', async () => {
    const expired = await f.addDevice('bd-tls-expired', { expired: true });
    expect((await knock(expired, 'bd-tls-expired')).received).toBe(0);
    const rows = await tlsRefusals(`actor_id = 'device:bd-tls-expired'`, []);
    expect(rows.map((r) => r.after.reason)).toEqual(['CERT_HAS_EXPIRED']);
  });

  it('lets no unauthorized socket reach Aedes: CONNECT, PUBLISH and SUBSCRIBE sent right after the handshake get nothing back', async () => {
    const revoked = await f.addDevice('bd-tls-gate-revoked', { status: 'active' });
    await f.revoke(revoked.serialHex);
    await f.broker.refreshCrl();
    const foreign = createForeignCa('Gate CA').issue({ cn: 'bd-tls-gate-evil' });
    const expired = await f.addDevice('bd-tls-gate-expired', { expired: true });
    let aedesClients = 0;
    let aedesConnections = 0;
    const onClient = (): void => void aedesClients++;
    const onConnection = (): void => void aedesConnections++;
    f.broker.aedes.on('client', onClient);
    f.broker.aedes.on('connectionError', onConnection);
    const receivedBefore = f.received.length;
    try {
      for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
        for (const [cert, id] of [
          [undefined, 'bd-tls-gate-none'],
          [foreign, 'bd-tls-gate-evil'],
          [revoked, 'bd-tls-gate-revoked'],
          [expired, 'bd-tls-gate-expired'],
        ] as const) {
          const r = await knock(cert, id, maxVersion);
          expect({ id, maxVersion, received: r.received }).toEqual({ id, maxVersion, received: 0 });
        }
      }
    } finally {
      f.broker.aedes.off('client', onClient);
      f.broker.aedes.off('connectionError', onConnection);
    }
    expect(aedesClients).toBe(0);
    expect(aedesConnections).toBe(0);
    expect(f.received.length).toBe(receivedBefore);
    // The control: a valid certificate sending the same bytes gets its CONNACK (and more).
    const ok = await f.addDevice('bd-tls-gate-ok', { status: 'active' });
    expect((await knock(ok, 'bd-tls-gate-ok')).received).toBeGreaterThan(0);
  });
});
