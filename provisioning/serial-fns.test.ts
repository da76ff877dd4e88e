import { execFileSync } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../api/dev-cert.ts';
import { createForeignCa } from '../test/forge-ca.ts';
import { requireTool } from '../test/tools.ts';
import {
  derIntegerHex,
  isCertificateSerialHex,
  randomSerialHex,
  serialHexFromBytes,
} from './serial-fns.ts';
import {
  buildCrl,
  buildDeviceCert,
  buildRootCa,
  derToPem,
  generateRsaKeyPair,
} from './x509-fns.ts';

// Fixed seed: a failure reproduces. The leading-octet cases that broke the dev certificate (0x00,
// and 0x80..0xff which need a pad) are generated explicitly, not left to a 1-in-256 draw.
const SEED = 20_260_422;
const leadingOctet = fc.oneof(
  fc.constantFrom(0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xff),
  fc.integer({ min: 0, max: 255 }),
);
const randomOctets = fc
  .tuple(
    leadingOctet,
    fc.constantFrom(0x00, 0x7f, 0x80, 0xff),
    fc.uint8Array({ minLength: 0, maxLength: 18 }),
  )
  .map(([a, b, rest]) => Uint8Array.of(a, b, ...rest));

/** X.690 §8.1 read by hand (not by the code under test): one TLV at `at`. */
function tlv(der: Buffer, at: number): { tag: number; start: number; end: number } {
  const tag = der[at++]!;
  let length = der[at++]!;
  if (length & 0x80) {
    const n = length & 0x7f;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[at++]!;
  }
  if (at + length > der.length) throw new RangeError('truncated');
  return { tag, start: at, end: at + length };
}

/** The content octets of every INTEGER in a DER structure, including inside extension values. */
function derIntegers(der: Buffer): Buffer[] {
  const found: Buffer[] = [];
  for (let at = 0; at < der.length;) {
    const { tag, start, end } = tlv(der, at);
    const content = der.subarray(start, end);
    if (tag === 0x02) found.push(content);
    else if (tag & 0x20) found.push(...derIntegers(content));
    else if (tag === 0x04) {
      try {
        found.push(...derIntegers(content)); // an extnValue wraps DER of its own
      } catch {
        // not DER inside (a key identifier)
      }
    }
    at = end;
  }
  return found;
}

/** The serial's content octets: Certificate > tbsCertificate > [0] version, then the INTEGER. */
function serialOctetsOf(der: Buffer): Buffer {
  const tbs = tlv(der, tlv(der, 0).start);
  const version = tlv(der, tbs.start);
  expect(version.tag).toBe(0xa0);
  const serial = tlv(der, version.end);
  expect(serial.tag).toBe(0x02);
  return der.subarray(serial.start, serial.end);
}

/** X.690 §8.3.2: no padding octet but the sign octet. */
function expectMinimal(octets: Buffer): void {
  if (octets.length > 1 && octets[0] === 0x00) expect(octets[1]! & 0x80).toBe(0x80);
  if (octets.length > 1 && octets[0] === 0xff) expect(octets[1]! & 0x80).toBe(0);
}

/** RFC 5280 §4.1.2.2 with X.690 §8.3.2: positive, minimal, at most 20 octets. */
function expectValidSerialOctets(octets: Buffer): void {
  expect(octets.length).toBeGreaterThanOrEqual(1);
  expect(octets.length).toBeLessThanOrEqual(20);
  expect(octets[0]! & 0x80).toBe(0); // positive
  expectMinimal(octets);
  expect(octets.some((o) => o !== 0)).toBe(true); // and not zero
}

describe('certificate serials (RFC 5280 §4.1.2.2)', () => {
  it('every generated serial is a positive, minimally encoded DER INTEGER of at most 20 octets', () => {
    fc.assert(
      fc.property(randomOctets, (random) => {
        const hex = serialHexFromBytes(random);
        expectValidSerialOctets(Buffer.from(hex, 'hex'));
        expect(hex.length).toBe(random.length * 2); // its entropy is kept, nothing stripped
        expect(isCertificateSerialHex(hex)).toBe(true);
      }),
      { seed: SEED, numRuns: 5000 },
    );
    for (let i = 0; i < 2000; i++) expectValidSerialOctets(Buffer.from(randomSerialHex(), 'hex'));
  });

  const keys = generateRsaKeyPair(2048);
  const rootPem = buildRootCa({ keys, cn: 'Serial Test Root', org: 'Thamani', days: 30 });
  const issuer = { certPem: rootPem, privateKeyPem: keys.privateKeyPem };
  const publicKey = createPublicKey(keys.publicKeyPem);

  it('a certificate built with any generated serial is accepted by OpenSSL and carries that serial unchanged', () => {
    fc.assert(
      fc.property(randomOctets, (random) => {
        const serial = serialHexFromBytes(random);
        const pem = buildDeviceCert({
          publicKey,
          deviceId: 'bd-serial-1',
          days: 1,
          issuer,
          serialHex: serial,
        });
        const x509 = new X509Certificate(pem); // throws "illegal padding" on a non-minimal INTEGER
        expect(x509.serialNumber.toLowerCase()).toBe(serial);
        expectValidSerialOctets(serialOctetsOf(x509.raw));
        derIntegers(x509.raw).forEach(expectMinimal);
        expect(() => tls.createSecureContext({ cert: pem, key: keys.privateKeyPem })).not.toThrow();
      }),
      { seed: SEED, numRuns: 40 },
    );
  });

  it('refuses to sign a serial that is not one, with a clear error', () => {
    for (const bad of [
      '00',
      '0000ab',
      '00' + '7f'.repeat(5),
      '80' + '00'.repeat(3),
      'ab'.repeat(21),
      'xyz',
      '',
    ]) {
      expect(isCertificateSerialHex(bad)).toBe(false);
      expect(() =>
        buildDeviceCert({ publicKey, deviceId: 'bd-serial-2', days: 1, issuer, serialHex: bad }),
      ).toThrow(/RFC 5280 §4\.1\.2\.2/);
    }
  });

  it('the fallback HTTPS certificate and the test CA use valid serials too', () => {
    // Key generation makes each draw slow; the generator itself is covered by the properties above.
    for (let i = 0; i < 4; i++) {
      const { cert, key } = selfSignedCertificate('localhost', 1);
      const x509 = new X509Certificate(cert);
      expectValidSerialOctets(serialOctetsOf(x509.raw));
      expect(() => tls.createSecureContext({ cert, key })).not.toThrow();
    }
    const foreign = createForeignCa();
    for (const pem of [foreign.caPem, foreign.issue({ cn: 'bd-serial-3' }).cert])
      expectValidSerialOctets(serialOctetsOf(new X509Certificate(pem).raw));
  });

  it('an integer in any hex spelling becomes its minimal DER content octets', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 160n) - 1n }),
        fc.nat({ max: 6 }),
        fc.boolean(),
        (n, zeros, upper) => {
          const spelled =
            '0'.repeat(zeros) + (upper ? n.toString(16).toUpperCase() : n.toString(16));
          const content = Buffer.from(derIntegerHex(spelled), 'hex');
          expect(BigInt(`0x${content.toString('hex')}`)).toBe(n);
          expect(content[0]! & 0x80).toBe(0);
          if (content.length > 1) expect(content[0] !== 0 || (content[1]! & 0x80) !== 0).toBe(true);
        },
      ),
      { seed: SEED, numRuns: 3000 },
    );
    expect(() => derIntegerHex('12g')).toThrow(TypeError);
  });

  it('a CRL lists serials given with leading zeros or a set top bit, and OpenSSL reads it', () => {
    if (!requireTool('openssl')) return;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'thamani-serial-'));
    const revoked = ['000012', '80', '0080ff', 'ABC', randomSerialHex()].map((serialHex) => ({
      serialHex,
      revokedAt: new Date(),
      reasonCode: 1,
    }));
    const file = path.join(dir, 'crl.pem');
    const der = buildCrl({
      issuer,
      revoked,
      crlNumber: 0x80,
      thisUpdate: new Date(),
      nextUpdate: new Date(Date.now() + 86_400_000),
    });
    // version, five serials, cRLNumber: each minimal (OpenSSL's printer below is lenient about it).
    const integers = derIntegers(der);
    expect(integers.map((i) => i.toString('hex'))).toEqual([
      '01',
      '12',
      '0080',
      '0080ff',
      '0abc',
      revoked[4]!.serialHex,
      '0080',
    ]);
    integers.forEach(expectMinimal);
    writeFileSync(file, derToPem(der, 'X509 CRL'));
    const text = execFileSync('openssl', ['crl', '-in', file, '-noout', '-text'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const listed = [...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) =>
      m[1]!.toLowerCase(),
    );
    expect(listed).toEqual(['12', '80', '80ff', '0abc', revoked[4]!.serialHex]);
    expect(text).toMatch(/CRL Number:\s*\n\s*128/);
  });
});
