import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import forge from 'node-forge';
import { fromDer, getTbsCertificate } from './asn1-fns.ts';
import { derIntegerHex, isCertificateSerialHex, randomSerialHex } from './serial-fns.ts';

export { randomSerialHex };

/**
 * Certificate building with node-forge, RFC 5280 profiles. Keys are made and used through
 * node:crypto (native, fast); forge lays out the TBSCertificate (§4.1) and forge.asn1 builds
 * what forge cannot: the CRL (§5), and the subjectPublicKeyInfo of a key forge cannot represent
 * (EC P-256, ADR 0002), which is spliced in as DER. Every signature is made by node:crypto.
 */

const { pki, asn1 } = forge;

export interface KeyPairPem {
  privateKeyPem: string;
  publicKeyPem: string;
}

export function generateRsaKeyPair(bits: 2048 | 3072 | 4096): KeyPairPem {
  return pemPair(generateKeyPairSync('rsa', { modulusLength: bits }));
}

/** An ECDSA key on P-256 (secp256r1, RFC 5480 §2.1.1.1), the one curve device keys may use. */
export function generateP256KeyPair(): KeyPairPem {
  return pemPair(generateKeyPairSync('ec', { namedCurve: 'P-256' }));
}

function pemPair({
  privateKey,
  publicKey,
}: {
  privateKey: KeyObject;
  publicKey: KeyObject;
}): KeyPairPem {
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** PKCS#8 encrypted with the passphrase (PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC). */
export function encryptPrivateKey(privateKeyPem: string, passphrase: string): string {
  return createPrivateKey(privateKeyPem)
    .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase })
    .toString();
}

export function decryptPrivateKey(encryptedPem: string, passphrase: string): string {
  return createPrivateKey({ key: encryptedPem, format: 'pem', passphrase })
    .export({ type: 'pkcs8', format: 'pem' })
    .toString();
}

export function normaliseSerialHex(serial: string): string {
  return serial
    .replace(/:/g, '')
    .toLowerCase()
    .replace(/^0+(?=.)/, '');
}

export function fingerprintSha256(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
}

const spkiDer = (key: KeyObject): Buffer => key.export({ type: 'spki', format: 'der' });

/**
 * RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING's value (without tag,
 * length and unused-bits octet), for any key type. For RSA it is what forge computes.
 */
export function subjectKeyIdentifier(key: KeyObject): Buffer {
  const spki = fromDer(spkiDer(key).toString('binary'));
  const bits = (spki.value as forge.asn1.Asn1[])[1]!.value as string;
  return createHash('sha1')
    .update(Buffer.from(bits.slice(1), 'binary'))
    .digest();
}

const certificateKey = (certPem: string): KeyObject => new X509Certificate(certPem).publicKey;

type Extension = Record<string, unknown> & { name: string };

interface BuildOptions {
  subjectCn: string;
  subjectOrg?: string;
  publicKey: KeyObject;
  issuer?: { certPem: string; privateKeyPem: string };
  selfSignedKeyPem?: string;
  notBefore: Date;
  notAfter: Date;
  extensions: Extension[];
  serialHex?: string;
}

/** Stands in for the subject key while forge lays out the TBSCertificate; replaced before signing. */
const placeholderKey = pki.setRsaPublicKey(
  new forge.jsbn.BigInteger('3'),
  new forge.jsbn.BigInteger('3'),
);
const SPKI_INDEX = 6; // version, serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo (§4.1)

function algorithmIdentifier(oid: string): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(oid).getBytes()),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
  ]);
}

function build(o: BuildOptions): string {
  const cert = pki.createCertificate();
  cert.publicKey = placeholderKey;
  const serialHex = o.serialHex ?? randomSerialHex();
  // forge writes the hex as given: refuse one that is not a DER serial rather than sign it.
  if (!isCertificateSerialHex(serialHex))
    throw new RangeError(
      `not a positive, minimally encoded serial of at most 20 octets (RFC 5280 §4.1.2.2): ${serialHex}`,
    );
  // eslint-disable-next-line no-restricted-syntax -- a caller's serial, checked just above
  cert.serialNumber = serialHex;
  cert.validity.notBefore = o.notBefore;
  cert.validity.notAfter = o.notAfter;
  const subject = [
    { name: 'commonName', value: o.subjectCn },
    ...(o.subjectOrg ? [{ name: 'organizationName', value: o.subjectOrg }] : []),
  ];
  cert.setSubject(subject);
  cert.setIssuer(o.issuer ? pki.certificateFromPem(o.issuer.certPem).subject.attributes : subject);
  const ski = subjectKeyIdentifier(o.publicKey).toString('binary');
  const aki = o.issuer
    ? subjectKeyIdentifier(certificateKey(o.issuer.certPem)).toString('binary')
    : ski;
  cert.setExtensions([
    ...o.extensions,
    // Given as a value: forge would hash the placeholder key.
    {
      name: 'subjectKeyIdentifier',
      value: asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, ski),
    },
    { name: 'authorityKeyIdentifier', keyIdentifier: aki },
  ]);
  // The issuing CA's key is RSA (ADR 0002): sha256WithRSAEncryption, PKCS#1 v1.5 (RFC 4055 §5).
  cert.siginfo.algorithmOid = pki.oids.sha256WithRSAEncryption!;
  const tbs = getTbsCertificate(cert);
  (tbs.value as forge.asn1.Asn1[])[SPKI_INDEX] = fromDer(spkiDer(o.publicKey).toString('binary'));
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  const signingKey = o.issuer ? o.issuer.privateKeyPem : o.selfSignedKeyPem!;
  const signature = sign('sha256', tbsDer, signingKey);
  const der = asn1.toDer(
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      tbs,
      algorithmIdentifier(pki.oids.sha256WithRSAEncryption!),
      asn1.create(
        asn1.Class.UNIVERSAL,
        asn1.Type.BITSTRING,
        false,
        `\u0000${signature.toString('binary')}`,
      ),
    ]),
  );
  return derToPem(Buffer.from(der.getBytes(), 'binary'), 'CERTIFICATE');
}

const DAY = 86_400_000;

export function buildRootCa(opts: {
  keys: KeyPairPem;
  cn: string;
  org: string;
  days: number;
  now?: Date;
}): string {
  const now = opts.now ?? new Date();
  return build({
    subjectCn: opts.cn,
    subjectOrg: opts.org,
    publicKey: createPublicKey(opts.keys.publicKeyPem),
    selfSignedKeyPem: opts.keys.privateKeyPem,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + opts.days * DAY),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
}

export function buildIssuingCa(opts: {
  keys: KeyPairPem;
  cn: string;
  org: string;
  days: number;
  root: { certPem: string; privateKeyPem: string };
  now?: Date;
}): string {
  const now = opts.now ?? new Date();
  return build({
    subjectCn: opts.cn,
    subjectOrg: opts.org,
    publicKey: createPublicKey(opts.keys.publicKeyPem),
    issuer: opts.root,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + opts.days * DAY),
    extensions: [
      // pathLenConstraint 0: it issues end-entity certificates only (RFC 5280 §4.2.1.9).
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
}

export interface Issuer {
  certPem: string;
  privateKeyPem: string;
}

export function buildServerCert(opts: {
  publicKeyPem: string;
  names: string[];
  days: number;
  issuer: Issuer;
  now?: Date;
}): string {
  const now = opts.now ?? new Date();
  const altNames = opts.names.map((n) =>
    /^[\d.]+$|:/.test(n) ? { type: 7, ip: n } : { type: 2, value: n },
  );
  return build({
    subjectCn: opts.names[0]!,
    publicKey: createPublicKey(opts.publicKeyPem),
    issuer: opts.issuer,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + opts.days * DAY),
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
}

/**
 * Device profile: end entity, digitalSignature, clientAuth, CN = device id. The same for an RSA
 * and a P-256 key (digitalSignature alone fits both: TLS 1.2 ECDHE and 1.3 only sign with it).
 */
export function buildDeviceCert(opts: {
  publicKey: KeyObject;
  deviceId: string;
  days: number;
  issuer: Issuer;
  serialHex: string;
  crlUrl?: string;
  now?: Date;
}): string {
  const now = opts.now ?? new Date();
  return build({
    subjectCn: opts.deviceId,
    publicKey: opts.publicKey,
    issuer: opts.issuer,
    serialHex: opts.serialHex,
    notBefore: new Date(now.getTime() - 5 * 60_000), // tolerate device clocks a little behind
    notAfter: new Date(now.getTime() + opts.days * DAY),
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true },
      ...(opts.crlUrl
        ? [{ name: 'cRLDistributionPoints', altNames: [{ type: 6, value: opts.crlUrl }] }]
        : []),
    ],
  });
}

export interface RevokedEntry {
  serialHex: string;
  revokedAt: Date;
  /** RFC 5280 §5.3.1 CRLReason code. */
  reasonCode: number;
}

function integerFromHex(hex: string): forge.asn1.Asn1 {
  return asn1.create(
    asn1.Class.UNIVERSAL,
    asn1.Type.INTEGER,
    false,
    forge.util.hexToBytes(derIntegerHex(hex)),
  );
}

function time(date: Date): forge.asn1.Asn1 {
  // RFC 5280 §5.1.2.4: UTCTime through 2049, GeneralizedTime after.
  return date.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date))
    : asn1.create(
        asn1.Class.UNIVERSAL,
        asn1.Type.GENERALIZEDTIME,
        false,
        asn1.dateToGeneralizedTime(date),
      );
}

function extension(oid: string, value: forge.asn1.Asn1): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(oid).getBytes()),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, asn1.toDer(value).getBytes()),
  ]);
}

/**
 * An X.509 v2 CRL (RFC 5280 §5) signed by the issuing CA with SHA-256/RSA: cRLNumber and
 * authorityKeyIdentifier extensions, and a reasonCode entry extension per revoked certificate.
 * node-forge has no CRL support, hence the ASN.1 by hand. Returns DER.
 */
export function buildCrl(opts: {
  issuer: Issuer;
  revoked: RevokedEntry[];
  crlNumber: number;
  thisUpdate: Date;
  nextUpdate: Date;
}): Buffer {
  const issuerCert = pki.certificateFromPem(opts.issuer.certPem);
  const sha256WithRsa = algorithmIdentifier(pki.oids.sha256WithRSAEncryption!);
  const entries = opts.revoked.map((r) =>
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      integerFromHex(r.serialHex),
      time(r.revokedAt),
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
        extension(
          '2.5.29.21',
          asn1.create(
            asn1.Class.UNIVERSAL,
            asn1.Type.ENUMERATED,
            false,
            String.fromCharCode(r.reasonCode),
          ),
        ),
      ]),
    ]),
  );
  const tbs = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, String.fromCharCode(1)), // v2
    sha256WithRsa,
    pki.distinguishedNameToAsn1(issuerCert.subject),
    time(opts.thisUpdate),
    time(opts.nextUpdate),
    ...(entries.length
      ? [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, entries)]
      : []),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
        extension('2.5.29.20', integerFromHex(opts.crlNumber.toString(16))),
        extension(
          '2.5.29.35',
          asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
            asn1.create(
              asn1.Class.CONTEXT_SPECIFIC,
              0,
              false,
              subjectKeyIdentifier(certificateKey(opts.issuer.certPem)).toString('binary'),
            ),
          ]),
        ),
      ]),
    ]),
  ]);
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  const signature = sign('sha256', tbsDer, opts.issuer.privateKeyPem);
  const crl = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    sha256WithRsa,
    asn1.create(
      asn1.Class.UNIVERSAL,
      asn1.Type.BITSTRING,
      false,
      `\u0000${signature.toString('binary')}`,
    ),
  ]);
  return Buffer.from(asn1.toDer(crl).getBytes(), 'binary');
}

export function derToPem(der: Buffer, label: string): string {
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
