import {
  createPrivateKey,
  createPublicKey,
  ECDH,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import fc from 'fast-check';
import forge from 'node-forge';
import { describe, expect, it } from 'vitest';
import { csrFor, encodeCsr } from '../simulators/keys.ts';
import { checkCsr } from './csr-fns.ts';
import { buildDeviceCert, buildRootCa, generateRsaKeyPair } from './x509-fns.ts';

/**
 * Every CSR is either accepted, with the very key and CN it carries, or refused with one of the
 * documented codes (csr-fns.ts, docs/device-contract.md), never anything else. Generated over key
 * types (RSA 2048/3072 accepted; P-256 accepted; P-384, P-521, secp256k1, Ed25519, RSA 1024/1536,
 * RSA with e = 3, an even or 4104-bit modulus, compressed and explicit-parameter EC keys refused),
 * signature algorithms, wrong or corrupted signatures, CNs, byte flips, truncation and garbage.
 */
const SEED = 20_261_130;
const DOCUMENTED = new Set([
  'CSR_MALFORMED',
  'CSR_UNSUPPORTED_KEY',
  'CSR_UNSUPPORTED_SIGNATURE',
  'CSR_BAD_SIGNATURE',
  'CSR_CN_MISMATCH',
]);
const DEVICE = 'bd-csr-1';
const { asn1 } = forge;

const pair = (
  type: 'rsa' | 'ec' | 'ed25519',
  opt: Record<string, unknown> = {},
): { priv: KeyObject; pub: KeyObject } => {
  const { privateKey, publicKey } = generateKeyPairSync(
    type as 'rsa',
    opt as { modulusLength: number },
  );
  return { priv: privateKey, pub: publicKey };
};
const spki = (k: KeyObject): Buffer => k.export({ type: 'spki', format: 'der' });
const rsaSpki = (nBits: number, even = false): Buffer => {
  const n = randomBytes(nBits / 8);
  n[0]! |= 0x80;
  n[n.length - 1] = even ? n[n.length - 1]! & 0xfe : n[n.length - 1]! | 1;
  return spki(
    createPublicKey({ key: { kty: 'RSA', n: n.toString('base64url'), e: 'AQAB' }, format: 'jwk' }),
  );
};
const P256_PREFIX = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex');
const compressedSpki = (k: KeyObject): Buffer => {
  const jwk = k.export({ format: 'jwk' });
  const raw = Buffer.concat([
    Buffer.from([4]),
    Buffer.from(jwk.x!, 'base64url'),
    Buffer.from(jwk.y!, 'base64url'),
  ]);
  return Buffer.concat([
    P256_PREFIX,
    ECDH.convertKey(raw, 'prime256v1', undefined, undefined, 'compressed') as Buffer,
  ]);
};
const explicitSpki = (k: KeyObject): Buffer => {
  const point = spki(k).subarray(-65).toString('binary');
  const node = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(
        asn1.Class.UNIVERSAL,
        asn1.Type.OID,
        false,
        asn1.oidToDer('1.2.840.10045.2.1').getBytes(),
      ),
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
        asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, '\u0001'),
      ]),
    ]),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\u0000${point}`),
  ]);
  return Buffer.from(asn1.toDer(node).getBytes(), 'binary');
};

/** Each key once (RSA generation is slow): the property varies what is done with it. */
const once = <T>(make: () => T): (() => T) => {
  let value: T | undefined;
  return () => (value ??= make());
};
const rsa2048 = pair('rsa', { modulusLength: 2048 });
const rsa3072 = pair('rsa', { modulusLength: 3072 });
const signer = rsa2048.priv; // signs requests whose key is refused before the signature is looked at

interface KeyCase {
  name: string;
  spki: () => Buffer;
  priv: () => KeyObject;
  /** The accepted key algorithm, or undefined when CSR_UNSUPPORTED_KEY is due. */
  accepted: string | undefined;
}
const keyCases: KeyCase[] = [
  {
    name: 'rsa-2048',
    spki: () => spki(rsa2048.pub),
    priv: () => rsa2048.priv,
    accepted: 'rsa-2048',
  },
  {
    name: 'rsa-3072',
    spki: () => spki(rsa3072.pub),
    priv: () => rsa3072.priv,
    accepted: 'rsa-3072',
  },
  ...(() => {
    const cache = new Map<string, { priv: KeyObject; pub: KeyObject }>();
    const ec = (name: string, curve: string): { priv: KeyObject; pub: KeyObject } =>
      cache.get(name) ?? cache.set(name, pair('ec', { namedCurve: curve })).get(name)!;
    return [
      {
        name: 'p256',
        spki: () => spki(ec('p256', 'P-256').pub),
        priv: () => ec('p256', 'P-256').priv,
        accepted: 'ec-p256',
      },
      {
        name: 'p384',
        spki: () => spki(ec('p384', 'P-384').pub),
        priv: () => ec('p384', 'P-384').priv,
        accepted: undefined,
      },
      {
        name: 'p521',
        spki: () => spki(ec('p521', 'P-521').pub),
        priv: () => ec('p521', 'P-521').priv,
        accepted: undefined,
      },
      {
        name: 'secp256k1',
        spki: () => spki(ec('k1', 'secp256k1').pub),
        priv: () => ec('k1', 'secp256k1').priv,
        accepted: undefined,
      },
      {
        name: 'p256-compressed',
        spki: () => compressedSpki(ec('p256', 'P-256').pub),
        priv: () => ec('p256', 'P-256').priv,
        accepted: undefined,
      },
      {
        name: 'p256-explicit',
        spki: () => explicitSpki(ec('p256', 'P-256').pub),
        priv: () => ec('p256', 'P-256').priv,
        accepted: undefined,
      },
    ] satisfies KeyCase[];
  })(),
  {
    name: 'ed25519',
    spki: once(() => spki(pair('ed25519').pub)),
    priv: () => signer,
    accepted: undefined,
  },
  {
    name: 'rsa-1024',
    spki: once(() => spki(pair('rsa', { modulusLength: 1024 }).pub)),
    priv: () => signer,
    accepted: undefined,
  },
  {
    name: 'rsa-1536',
    spki: once(() => spki(pair('rsa', { modulusLength: 1536 }).pub)),
    priv: () => signer,
    accepted: undefined,
  },
  {
    name: 'rsa-2048-e3',
    spki: once(() => spki(pair('rsa', { modulusLength: 2048, publicExponent: 3 }).pub)),
    priv: () => signer,
    accepted: undefined,
  },
  ...(() => {
    const e65539 = once(() => pair('rsa', { modulusLength: 2048, publicExponent: 65539 }));
    return [
      {
        name: 'rsa-2048-e65539',
        spki: () => spki(e65539().pub),
        priv: () => e65539().priv,
        accepted: 'rsa-2048',
      },
    ];
  })(),
  {
    name: 'rsa-2048-even',
    spki: () => rsaSpki(2048, true),
    priv: () => signer,
    accepted: undefined,
  },
  { name: 'rsa-4104', spki: () => rsaSpki(4104), priv: () => signer, accepted: undefined },
];

const SIG = {
  'sha256-rsa': { oid: '1.2.840.113549.1.1.11', hash: 'sha256', key: 'rsa', ok: true },
  'sha384-rsa': { oid: '1.2.840.113549.1.1.12', hash: 'sha384', key: 'rsa', ok: true },
  'sha512-rsa': { oid: '1.2.840.113549.1.1.13', hash: 'sha512', key: 'rsa', ok: true },
  'sha1-rsa': { oid: '1.2.840.113549.1.1.5', hash: 'sha1', key: 'rsa', ok: false },
  pss: { oid: '1.2.840.113549.1.1.10', hash: 'sha256', key: 'rsa', ok: false },
  'sha256-ecdsa': { oid: '1.2.840.10045.4.3.2', hash: 'sha256', key: 'ec', ok: true },
  'sha384-ecdsa': { oid: '1.2.840.10045.4.3.3', hash: 'sha384', key: 'ec', ok: true },
  'sha512-ecdsa': { oid: '1.2.840.10045.4.3.4', hash: 'sha512', key: 'ec', ok: true },
  'sha1-ecdsa': { oid: '1.2.840.10045.4.1', hash: 'sha1', key: 'ec', ok: false },
} as const;

const cn = fc.oneof(
  fc.constant<string | string[]>(DEVICE),
  fc.constantFrom<string | string[]>(
    'bd-csr-2',
    `${DEVICE} `,
    DEVICE.toUpperCase(),
    '',
    [],
    [DEVICE, DEVICE],
    [DEVICE, 'bd-csr-2'],
    ['bd-csr-2', DEVICE],
  ),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);

const outcome = (pem: string): string => {
  try {
    return `ok:${checkCsr(pem, DEVICE).keyAlgorithm}`;
  } catch (err) {
    const code = (err as { code?: string }).code;
    return code && DOCUMENTED.has(code) ? code : `undocumented:${String(err)}`;
  }
};

describe('CSR checks over generated requests', () => {
  it('accepts exactly RSA 2048+ and P-256 requests signed with SHA-2 by their own key for the device, refusing the rest with the due code', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...keyCases),
        fc.constantFrom(...(Object.keys(SIG) as (keyof typeof SIG)[])),
        cn,
        fc.boolean(),
        (k, sigName, subjectCn, corrupt) => {
          const s = SIG[sigName];
          const priv = k.priv();
          const keyType = priv.asymmetricKeyType === 'ec' ? 'ec' : 'rsa';
          const pem = encodeCsr({
            subjectCn,
            spkiDer: k.spki(),
            signatureOid: s.oid,
            nullParameter: s.key === 'rsa',
            sign(info) {
              // An ECDSA OID over an RSA key (or the reverse) is signed with the key's own scheme.
              const sig = sign(s.hash, info, priv);
              if (corrupt) sig[sig.length >> 1]! ^= 0x10;
              return sig;
            },
          });
          const expected =
            k.accepted === undefined
              ? 'CSR_UNSUPPORTED_KEY'
              : !s.ok
                ? 'CSR_UNSUPPORTED_SIGNATURE'
                : corrupt || s.key !== keyType
                  ? 'CSR_BAD_SIGNATURE'
                  : subjectCn !== DEVICE
                    ? 'CSR_CN_MISMATCH' // exactly one CN, the device id
                    : `ok:${k.accepted}`;
          expect({ key: k.name, sigName, subjectCn, corrupt, got: outcome(pem) }).toEqual({
            key: k.name,
            sigName,
            subjectCn,
            corrupt,
            got: expected,
          });
        },
      ),
      { seed: SEED, numRuns: 400 },
    );
  });

  it('never accepts a flipped, truncated or extended request with another key or CN, and refuses garbage with CSR_MALFORMED', () => {
    const rootKeys = generateRsaKeyPair(2048);
    const issuer = {
      certPem: buildRootCa({ keys: rootKeys, cn: 'CSR Test Root', org: 'Thamani', days: 2 }),
      privateKeyPem: rootKeys.privateKeyPem,
    };
    const ecKey = pair('ec', { namedCurve: 'P-256' })
      .priv.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    const rsaKey = rsa2048.priv.export({ type: 'pkcs8', format: 'pem' }).toString();
    const armour = (der: Buffer): string =>
      `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    const derOf = (pem: string): Buffer =>
      Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const good = { ec: derOf(csrFor(DEVICE, ecKey)), rsa: derOf(csrFor(DEVICE, rsaKey)) };
    const mutation = fc.oneof(
      fc.record({
        kind: fc.constant('flip' as const),
        at: fc.nat(),
        bit: fc.integer({ min: 0, max: 7 }),
      }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({
        kind: fc.constant('append' as const),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
      }),
    );
    fc.assert(
      fc.property(fc.constantFrom('ec' as const, 'rsa' as const), mutation, (type, m) => {
        const der = Buffer.from(good[type]);
        let mutated: Buffer;
        if (m.kind === 'flip') {
          der[m.at % der.length]! ^= 1 << m.bit;
          mutated = der;
        } else if (m.kind === 'truncate') mutated = der.subarray(0, m.at % der.length);
        else mutated = Buffer.concat([der, m.bytes]);
        const got = outcome(armour(mutated));
        expect(got).not.toMatch(/^undocumented/);
        if (m.kind !== 'flip') expect(got).toBe('CSR_MALFORMED');
        if (got.startsWith('ok:')) {
          // Only a change that leaves the signed key and subject intact (e.g. the NULL parameter's tag) can pass, and it certifies the device's own key.
          const checked = checkCsr(armour(mutated), DEVICE);
          const original = createPublicKey(createPrivateKey(type === 'ec' ? ecKey : rsaKey));
          expect(checked.publicKey.equals(original)).toBe(true);
          const cert = new X509Certificate(
            buildDeviceCert({
              publicKey: checked.publicKey,
              deviceId: DEVICE,
              days: 1,
              issuer,
              serialHex: '4a01',
            }),
          );
          expect(cert.publicKey.equals(original)).toBe(true);
          expect(cert.subject).toBe(`CN=${DEVICE}`);
          expect(cert.verify(createPublicKey(rootKeys.publicKeyPem))).toBe(true);
        }
      }),
      { seed: SEED, numRuns: 600 },
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.uint8Array({ maxLength: 300 }).map((b) => armour(Buffer.from(b))),
          fc
            .uint8Array({ maxLength: 300 })
            .map(
              (b) =>
                `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(b).toString('latin1')}\n-----END CERTIFICATE REQUEST-----`,
            ),
        ),
        (junk) => {
          expect(outcome(junk)).toBe('CSR_MALFORMED');
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('accepts the CSRs openssl-style tools make for both key types (the simulator encoder) and certifies the same key', () => {
    const ec = pair('ec', { namedCurve: 'P-256' });
    const checked = checkCsr(
      csrFor(DEVICE, ec.priv.export({ type: 'pkcs8', format: 'pem' }).toString()),
      DEVICE,
    );
    expect(checked.keyAlgorithm).toBe('ec-p256');
    expect(checked.publicKey.equals(ec.pub)).toBe(true);
    const rsaPem = csrFor(DEVICE, rsa2048.priv.export({ type: 'pkcs8', format: 'pem' }).toString());
    expect(checkCsr(rsaPem, DEVICE).keyAlgorithm).toBe('rsa-2048');
    // RFC 7468 §2: text around the block (openssl req -text), CRLF line ends.
    expect(checkCsr(`Certificate Request:\n    Data: ...\n${rsaPem}`, DEVICE).keyAlgorithm).toBe(
      'rsa-2048',
    );
    expect(checkCsr(rsaPem.replace(/\n/g, '\r\n'), DEVICE).keyAlgorithm).toBe('rsa-2048');
    // Two blocks: which one would be certified? Neither.
    expect(() => checkCsr(`${rsaPem}${rsaPem}`, DEVICE)).toThrow(
      expect.objectContaining({ code: 'CSR_MALFORMED' }),
    );
  });
});
