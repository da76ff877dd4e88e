import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { requireTool } from '../test/tools.ts';
import {
  buildCrl,
  buildDeviceCert,
  buildIssuingCa,
  buildRootCa,
  buildServerCert,
  decryptPrivateKey,
  derToPem,
  encryptPrivateKey,
  generateP256KeyPair,
  generateRsaKeyPair,
  randomSerialHex,
} from './x509-fns.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'thamani-x509-'));
const file = (name: string, content: string | Buffer): string => {
  const p = path.join(dir, name);
  writeFileSync(p, content);
  return p;
};
const openssl = (...args: string[]): string =>
  execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

const rootKeys = generateRsaKeyPair(3072);
const root = buildRootCa({ keys: rootKeys, cn: 'Test Root', org: 'Thamani', days: 3650 });
const issuingKeys = generateRsaKeyPair(3072);
const issuing = buildIssuingCa({
  keys: issuingKeys,
  cn: 'Test Issuing',
  org: 'Thamani',
  days: 1825,
  root: { certPem: root, privateKeyPem: rootKeys.privateKeyPem },
});
const issuer = { certPem: issuing, privateKeyPem: issuingKeys.privateKeyPem };

describe('x509 profiles (checked by openssl)', () => {
  it('makes a chain that openssl verifies, with a device certificate of the RFC 5280 end-entity profile', () => {
    if (!requireTool('openssl')) return;
    const device = generateRsaKeyPair(2048);
    const serial = randomSerialHex();
    const cert = buildDeviceCert({
      publicKey: createPublicKey(device.publicKeyPem),
      deviceId: 'bd-x509-1',
      days: 397,
      issuer,
      serialHex: serial,
      crlUrl: 'https://localhost:8443/api/v1/pki/crl.der',
    });
    const out = openssl(
      'verify',
      '-CAfile',
      file('root.pem', root),
      '-untrusted',
      file('issuing.pem', issuing),
      '-purpose',
      'sslclient',
      file('dev.pem', cert),
    );
    expect(out.trim()).toMatch(/dev\.pem: OK$/);
    const text = openssl('x509', '-in', file('dev.pem', cert), '-noout', '-text');
    expect(text).toMatch(/Subject: CN = bd-x509-1/);
    expect(text).toMatch(/CA:FALSE/);
    expect(text).toMatch(/Digital Signature/);
    expect(text).toMatch(/TLS Web Client Authentication/);
    expect(text).not.toMatch(/TLS Web Server Authentication/);
    expect(text.replace(/[\s:]/g, '')).toContain(serial);
    const days =
      (new Date(text.match(/Not After : (.*)/)![1]!).getTime() - Date.now()) / 86_400_000;
    expect(Math.round(days)).toBe(397);
  });

  it('makes a server certificate with serverAuth and the configured names', () => {
    if (!requireTool('openssl')) return;
    const keys = generateRsaKeyPair(2048);
    const cert = buildServerCert({
      publicKeyPem: keys.publicKeyPem,
      names: ['gw.example.ke', 'localhost', '127.0.0.1'],
      days: 397,
      issuer,
    });
    const text = openssl('x509', '-in', file('srv.pem', cert), '-noout', '-text');
    expect(text).toMatch(/TLS Web Server Authentication/);
    expect(text).toMatch(/DNS:gw\.example\.ke, DNS:localhost, IP Address:127\.0\.0\.1/);
    expect(
      openssl(
        'verify',
        '-CAfile',
        file('root.pem', root),
        '-untrusted',
        file('issuing.pem', issuing),
        '-purpose',
        'sslserver',
        file('srv.pem', cert),
      ).trim(),
    ).toMatch(/OK$/);
  });

  it('makes a v2 CRL that openssl parses and enforces', () => {
    if (!requireTool('openssl')) return;
    const device = generateRsaKeyPair(2048);
    const serial = randomSerialHex();
    const cert = buildDeviceCert({
      publicKey: createPublicKey(device.publicKeyPem),
      deviceId: 'bd-x509-2',
      days: 30,
      issuer,
      serialHex: serial,
    });
    const crl = derToPem(
      buildCrl({
        issuer,
        revoked: [{ serialHex: serial, revokedAt: new Date(), reasonCode: 1 }],
        crlNumber: 7,
        thisUpdate: new Date(),
        nextUpdate: new Date(Date.now() + 86_400_000),
      }),
      'X509 CRL',
    );
    const text = openssl('crl', '-in', file('crl.pem', crl), '-noout', '-text');
    expect(text).toMatch(/Version 2/);
    expect(text).toMatch(/X509v3 CRL Number:\s*\n\s*7/);
    expect(text).toMatch(/Key Compromise/);
    expect(text.replace(/[\s:]/g, '').toLowerCase()).toContain(serial);
    // The CRL's signature verifies against the issuing CA.
    expect(
      execFileSync(
        'openssl',
        ['crl', '-in', file('crl.pem', crl), '-noout', '-CAfile', file('issuing.pem', issuing)],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    ).toBe('');
    let failure = '';
    try {
      openssl(
        'verify',
        '-crl_check',
        '-CAfile',
        file('root.pem', root),
        '-untrusted',
        file('issuing.pem', issuing),
        '-CRLfile',
        file('crl.pem', crl),
        file('dev2.pem', cert),
      );
    } catch (err) {
      failure =
        String((err as { stdout?: string }).stdout) + String((err as { stderr?: string }).stderr);
    }
    expect(failure).toMatch(/certificate revoked/);
  });

  it('gives a P-256 key exactly the device profile of an RSA key, and the CRL revokes it the same way', () => {
    if (!requireTool('openssl')) return;
    const crlUrl = 'https://localhost:8443/api/v1/pki/crl.der';
    const now = new Date();
    const issue = (publicKeyPem: string, serialHex: string): string =>
      buildDeviceCert({
        publicKey: createPublicKey(publicKeyPem),
        deviceId: 'bd-x509-ec',
        days: 397,
        issuer,
        serialHex,
        crlUrl,
        now,
      });
    const ecSerial = randomSerialHex();
    const ec = issue(generateP256KeyPair().publicKeyPem, ecSerial);
    const rsa = issue(generateRsaKeyPair(2048).publicKeyPem, randomSerialHex());
    /** Everything but the key, its identifier, the serial and the signature value. */
    const profile = (pem: string): string => {
      const text = openssl(
        'x509',
        '-in',
        file('profile.pem', pem),
        '-noout',
        '-text',
        '-certopt',
        'no_pubkey,no_sigdump,no_serial',
      );
      return text.replace(/(Subject Key Identifier:\s*\n\s*)[0-9A-F:]+/, '$1<ski>');
    };
    expect(profile(ec)).toBe(profile(rsa));
    for (const part of [
      'CA:FALSE',
      'Digital Signature',
      'TLS Web Client Authentication',
      'CRL Distribution Points',
      '<ski>',
      'Authority Key Identifier',
      'Subject: CN = bd-x509-ec',
    ])
      expect(profile(ec)).toContain(part);
    expect(openssl('x509', '-in', file('ec.pem', ec), '-noout', '-text')).toMatch(
      /id-ecPublicKey[\s\S]*NIST CURVE: P-256/,
    );
    expect(
      openssl(
        'verify',
        '-CAfile',
        file('root.pem', root),
        '-untrusted',
        file('issuing.pem', issuing),
        '-purpose',
        'sslclient',
        file('ec.pem', ec),
      ).trim(),
    ).toMatch(/OK$/);
    const crl = derToPem(
      buildCrl({
        issuer,
        revoked: [{ serialHex: ecSerial, revokedAt: new Date(), reasonCode: 1 }],
        crlNumber: 8,
        thisUpdate: new Date(),
        nextUpdate: new Date(Date.now() + 86_400_000),
      }),
      'X509 CRL',
    );
    let failure = '';
    try {
      openssl(
        'verify',
        '-crl_check',
        '-CAfile',
        file('root.pem', root),
        '-untrusted',
        file('issuing.pem', issuing),
        '-CRLfile',
        file('crl-ec.pem', crl),
        file('ec.pem', ec),
      );
    } catch (err) {
      failure =
        String((err as { stdout?: string }).stdout) + String((err as { stderr?: string }).stderr);
    }
    expect(failure).toMatch(/certificate revoked/);
  });

  it('encrypts private keys at rest with the passphrase', () => {
    const enc = encryptPrivateKey(rootKeys.privateKeyPem, 'correct horse battery staple');
    expect(enc).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    expect(enc).not.toContain(rootKeys.privateKeyPem.split('\n')[1]);
    expect(decryptPrivateKey(enc, 'correct horse battery staple')).toBe(rootKeys.privateKeyPem);
    expect(() => decryptPrivateKey(enc, 'wrong')).toThrow();
  });
});
