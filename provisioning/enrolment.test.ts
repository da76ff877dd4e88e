import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsRequest } from '../test/https-client.ts';
import { requireTool } from '../test/tools.ts';
import { ADMIN_TOKEN, PASSPHRASE, startPkiFixture, type PkiFixture } from '../test/pki-fixture.ts';
import { decryptPrivateKey } from './x509-fns.ts';

let f: PkiFixture;
const work = mkdtempSync(path.join(os.tmpdir(), 'thamani-enrol-'));
const file = (name: string, content?: string): string => {
  const p = path.join(work, name);
  if (content !== undefined) writeFileSync(p, content);
  return p;
};
const openssl = (...args: string[]): string =>
  execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

beforeAll(async () => {
  f = await startPkiFixture();
});
afterAll(async () => {
  await f?.app.close();
});

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const api = (p: string, opts: { method?: string; body?: unknown; auth?: boolean } = {}) =>
  httpsRequest(`${f.baseUrl}${p}`, {
    ca: f.ca.rootCertPem,
    ...(opts.method ? { method: opts.method } : {}),
    ...(opts.body !== undefined ? { body: opts.body } : {}),
    headers: opts.auth === false ? {} : admin,
  });

/** A CSR made by openssl, as a device would (the key never leaves "the device"). */
function csr(
  cn: string,
  keyArgs: string[] = ['-newkey', 'rsa:2048'],
): { csr: string; key: string } {
  const key = file(`${cn}-${Math.random()}.key`);
  const out = file(`${cn}-${Math.random()}.csr`);
  openssl('req', ...keyArgs, '-nodes', '-keyout', key, '-subj', `/CN=${cn}`, '-out', out);
  return { csr: readFileSync(out, 'utf8'), key };
}

async function token(deviceId: string): Promise<string> {
  const res = await api(`/devices/${deviceId}/enrolment-tokens`, { method: 'POST' });
  expect(res.status).toBe(201);
  return res.json<{ token: string }>().token;
}

async function issuedCount(): Promise<number> {
  return (
    await f.t.database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM certificates')
  ).rows[0]!.n;
}

describe('enrolment over HTTPS', () => {
  it('enrols an openssl RSA 2048 CSR with a fresh token; the certificate verifies against the published chain', async () => {
    if (!requireTool('openssl')) return;
    await f.addDevice('bd-enrol-ok');
    const { csr: request } = csr('bd-enrol-ok');
    const res = await api('/enroll', {
      body: { token: await token('bd-enrol-ok'), csr: request },
      auth: false,
    });
    expect(res.status).toBe(201);
    const body = res.json<{
      certificate: string;
      chain: string;
      ca: string;
      brokerUrl: string;
      serial: string;
    }>();
    expect(body.brokerUrl).toBe('mqtts://localhost:8883');
    const ca = await api('/pki/ca.pem', { auth: false });
    const chain = await api('/pki/chain.pem', { auth: false });
    expect(ca.body).toBe(body.ca);
    expect(
      openssl(
        'verify',
        '-CAfile',
        file('ca.pem', ca.body),
        '-untrusted',
        file('chain.pem', chain.body),
        file('dev.pem', body.certificate),
      ).trim(),
    ).toMatch(/OK$/);
    const text = openssl('x509', '-in', file('dev.pem'), '-noout', '-subject', '-serial');
    expect(text).toMatch(/subject=CN = bd-enrol-ok/);
    expect(text.toLowerCase()).toContain(body.serial);
  });

  it('enrols an openssl EC P-256 CSR with the same profile; the certificate carries the device key and verifies against the chain', async () => {
    if (!requireTool('openssl')) return;
    await f.addDevice('bd-enrol-ec');
    const { csr: request, key } = csr('bd-enrol-ec', [
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
    ]);
    const res = await api('/enroll', {
      body: { token: await token('bd-enrol-ec'), csr: request },
      auth: false,
    });
    expect(res.status).toBe(201);
    const body = res.json<{ certificate: string; chain: string; ca: string; serial: string }>();
    expect(
      openssl(
        'verify',
        '-CAfile',
        file('ca-ec.pem', body.ca),
        '-untrusted',
        file('chain-ec.pem', body.chain),
        '-purpose',
        'sslclient',
        file('dev-ec.pem', body.certificate),
      ).trim(),
    ).toMatch(/OK$/);
    const text = openssl('x509', '-in', file('dev-ec.pem'), '-noout', '-text');
    expect(text).toMatch(/Public Key Algorithm: id-ecPublicKey/);
    expect(text).toMatch(/NIST CURVE: P-256/);
    expect(text).toMatch(/Signature Algorithm: sha256WithRSAEncryption/); // the issuing CA stays RSA (ADR 0002)
    expect(text).toMatch(/CA:FALSE/);
    expect(text).toMatch(/Digital Signature/);
    expect(text).toMatch(/TLS Web Client Authentication/);
    expect(text).toMatch(/X509v3 Subject Key Identifier/);
    expect(text).toMatch(/X509v3 Authority Key Identifier/);
    // The certified key is the device's own.
    expect(openssl('x509', '-in', file('dev-ec.pem'), '-noout', '-pubkey')).toBe(
      openssl('pkey', '-in', key, '-pubout'),
    );
    const audit = await f.t.database.pool.query(
      `SELECT after FROM audit_log WHERE action = 'certificate.enrol' AND target_id = $1`,
      [body.serial],
    );
    expect(audit.rows[0].after).toMatchObject({ keyAlgorithm: 'ec-p256' });
  });

  it('refuses an EC P-384 CSR and an RSA 1024 one with CSR_UNSUPPORTED_KEY, and issues nothing', async () => {
    if (!requireTool('openssl')) return;
    await f.addDevice('bd-enrol-p384');
    const before = await issuedCount();
    for (const keyArgs of [
      ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
      ['-newkey', 'rsa:1024'],
    ]) {
      const res = await api('/enroll', {
        body: { token: await token('bd-enrol-p384'), csr: csr('bd-enrol-p384', keyArgs).csr },
        auth: false,
      });
      expect({ keyArgs, status: res.status, code: res.json().code }).toEqual({
        keyArgs,
        status: 400,
        code: 'CSR_UNSUPPORTED_KEY',
      });
    }
    expect(await issuedCount()).toBe(before);
  });

  it('gives each bad enrolment a clear 4xx with an error code, and issues nothing', async () => {
    if (!requireTool('openssl')) return;
    await f.addDevice('bd-enrol-a');
    await f.addDevice('bd-enrol-b');
    const good = csr('bd-enrol-a');
    const used = await token('bd-enrol-a');
    expect(
      (await api('/enroll', { body: { token: used, csr: good.csr }, auth: false })).status,
    ).toBe(201);
    const before = await issuedCount();

    const expired = await token('bd-enrol-a');
    await f.t.database.pool.query(
      `UPDATE enrolment_tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL`,
    );
    const fresh = await token('bd-enrol-a');
    const der = Buffer.from(good.csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5]! ^= 0xff; // inside the signature
    const badSignature = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;

    const cases: [string, Record<string, unknown>, number, string][] = [
      [
        'the same token a second time',
        { token: used, csr: good.csr },
        401,
        'ENROLMENT_TOKEN_INVALID',
      ],
      ['an expired token', { token: expired, csr: good.csr }, 401, 'ENROLMENT_TOKEN_INVALID'],
      ['an unknown token', { token: 'enr_nope', csr: good.csr }, 401, 'ENROLMENT_TOKEN_INVALID'],
      [
        'a token for another device (CSR for bd-enrol-b)',
        { token: fresh, csr: csr('bd-enrol-b').csr },
        400,
        'CSR_CN_MISMATCH',
      ],
      [
        'a CSR whose CN differs',
        { token: fresh, csr: csr('something-else').csr },
        400,
        'CSR_CN_MISMATCH',
      ],
      [
        'a malformed CSR',
        {
          token: fresh,
          csr: '-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n',
        },
        400,
        'CSR_MALFORMED',
      ],
      ['not a CSR at all', { token: fresh, csr: 'hello' }, 400, 'CSR_MALFORMED'],
      ['a CSR with a bad signature', { token: fresh, csr: badSignature }, 400, 'CSR_BAD_SIGNATURE'],
      ['no CSR', { token: fresh }, 400, 'VALIDATION_FAILED'],
    ];
    for (const [what, body, status, code] of cases) {
      const res = await api('/enroll', { body, auth: false });
      expect({ what, status: res.status, code: res.json().code }).toEqual({ what, status, code });
      expect(res.json().requestId).toBeTruthy();
    }
    expect(await issuedCount()).toBe(before);
    // The token survived the failed attempts: a good CSR still enrols with it.
    expect(
      (await api('/enroll', { body: { token: fresh, csr: good.csr }, auth: false })).status,
    ).toBe(201);
  });

  it('puts a revoked serial in the published CRL within the revoking request', async () => {
    if (!requireTool('openssl')) return;
    await f.addDevice('bd-enrol-rev');
    const res = await api('/enroll', {
      body: { token: await token('bd-enrol-rev'), csr: csr('bd-enrol-rev').csr },
      auth: false,
    });
    const { serial } = res.json<{ serial: string }>();
    const revoked = await api(`/certificates/${serial}/revoke`, {
      method: 'POST',
      body: { reason: 'keyCompromise' },
    });
    expect(revoked.status).toBe(200);
    expect(revoked.json()).toMatchObject({ status: 'revoked', reason: 'keyCompromise' });
    const crl = await api('/pki/crl.pem', { auth: false });
    const text = openssl('crl', '-in', file('crl.pem', crl.body), '-noout', '-text');
    expect(text.replace(/[\s:]/g, '').toLowerCase()).toContain(`serialnumber${serial}`);
    expect(text).toMatch(/Key Compromise/);
    expect(
      (await api(`/certificates/${serial}/revoke`, { method: 'POST', body: {} })).json(),
    ).toMatchObject({ code: 'CERTIFICATE_ALREADY_REVOKED' });
  });

  it('keeps every CA and server key encrypted on disk', () => {
    for (const name of ['root.key', 'issuing.key', 'server.key']) {
      const onDisk = readFileSync(path.join(f.dir, name), 'utf8');
      expect(onDisk).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
      expect(onDisk).not.toMatch(/BEGIN (RSA )?PRIVATE KEY/);
      expect(() => decryptPrivateKey(onDisk, 'not the passphrase')).toThrow();
      expect(decryptPrivateKey(onDisk, PASSPHRASE)).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    }
    expect(readFileSync(path.join(f.dir, 'issuing.key'), 'utf8')).not.toContain(
      f.ca.issuing.privateKeyPem.split('\n')[2]!,
    );
  });

  it('is for technicians: no token, no enrolment token; every action is audited with before/after', async () => {
    expect(
      (await api('/devices/bd-enrol-ok/enrolment-tokens', { method: 'POST', auth: false })).json(),
    ).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await api('/certificates', { auth: false })).status).toBe(401);
    const { rows } = await f.t.database.pool.query(
      `SELECT action, actor_id, target_id, before, after FROM audit_log ORDER BY id`,
    );
    const actions = rows.map((r: { action: string }) => r.action);
    expect(actions).toEqual(
      expect.arrayContaining([
        'device.create',
        'enrolment_token.create',
        'certificate.enrol',
        'certificate.revoke',
      ]),
    );
    // (Re-enrolment revokes too, as the enrolment: the technician's revocation is the one by admin-token.)
    const revoke = rows.find(
      (r: { action: string; actor_id: string }) =>
        r.action === 'certificate.revoke' && r.actor_id === 'admin-token',
    );
    expect(revoke).toMatchObject({
      actor_id: 'admin-token',
      before: { status: 'active' },
      after: { status: 'revoked', reason: 'keyCompromise' },
    });
  });

  it('issues a key pair once as PEM and as a password-protected PKCS#12 for devices without CSR support', async () => {
    if (!requireTool('openssl')) return;
    await f.addDevice('bd-enrol-p12');
    expect(
      (await api('/devices/bd-enrol-p12/keypair', { body: { pkcs12Password: 'short' } })).json(),
    ).toMatchObject({ code: 'PKCS12_PASSWORD_TOO_SHORT' });
    const res = await api('/devices/bd-enrol-p12/keypair', {
      body: { pkcs12Password: 'a long p12 password' },
    });
    expect(res.status).toBe(201);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json<{ privateKey: string; pkcs12: string }>();
    expect(body.privateKey).toMatch(/BEGIN PRIVATE KEY/);
    writeFileSync(file('dev.p12'), Buffer.from(body.pkcs12, 'base64'));
    const out = execFileSync(
      'openssl',
      ['pkcs12', '-in', file('dev.p12'), '-nokeys', '-passin', 'pass:a long p12 password'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    expect(out).toMatch(/subject=CN = bd-enrol-p12/);
    expect(() =>
      execFileSync(
        'openssl',
        ['pkcs12', '-in', file('dev.p12'), '-nokeys', '-passin', 'pass:wrong'],
        { stdio: 'ignore' },
      ),
    ).toThrow();
    const stored = await f.t.database.pool.query(
      `SELECT count(*)::int AS n FROM certificates WHERE device_id = 'bd-enrol-p12' AND pem LIKE '%PRIVATE KEY%'`,
    );
    expect(stored.rows[0].n).toBe(0);
  });
});
