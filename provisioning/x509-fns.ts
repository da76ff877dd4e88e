import { createHash, createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import forge from 'node-forge';
import { derIntegerHex, isCertificateSerialHex, randomSerialHex } from './serial-fns.ts';

export { randomSerialHex };

/**
 * Certificate building with node-forge, RFC 5280 profiles. Keys are made and used through
 * node:crypto (native, fast); forge builds and signs the structures it supports (certificates)
 * and forge.asn1 builds the one it does not (the CRL, §5).
 */

const { pki, asn1 } = forge;

export interface KeyPairPem {
  privateKeyPem: string;
  publicKeyPem: string;
}

export function generateRsaKeyPair(bits: 2048 | 3072 | 4096): KeyPairPem {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** PKCS#8 encrypted with the passphrase (PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC). */
export function encryptPrivateKey(privateKeyPem: string, passphrase: string): string {
  return createPrivateKey(privateKeyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }).toString();
}

export function decryptPrivateKey(encryptedPem: string, passphrase: string): string {
  return createPrivateKey({ key: encryptedPem, format: 'pem', passphrase }).export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function normaliseSerialHex(serial: string): string {
  return serial.replace(/:/g, '').toLowerCase().replace(/^0+(?=.)/, '');
}

export function fingerprintSha256(certPem: string): string {
  const der = Buffer.from(asn1.toDer(pki.certificateToAsn1(pki.certificateFromPem(certPem))).getBytes(), 'binary');
  return createHash('sha256').update(der).digest('hex');
}

function forgeKey(privateKeyPem: string): forge.pki.rsa.PrivateKey {
  return pki.privateKeyFromPem(privateKeyPem);
}

function skiBytes(cert: forge.pki.Certificate): string {
  return cert.generateSubjectKeyIdentifier().getBytes();
}

type Extension = Record<string, unknown> & { name: string };

interface BuildOptions {
  subjectCn: string;
  subjectOrg?: string;
  publicKey: forge.pki.PublicKey;
  issuer?: { cert: forge.pki.Certificate; privateKeyPem: string };
  selfSignedKeyPem?: string;
  notBefore: Date;
  notAfter: Date;
  extensions: Extension[];
  serialHex?: string;
}

function build(o: BuildOptions): forge.pki.Certificate {
  const cert = pki.createCertificate();
  cert.publicKey = o.publicKey;
  const serialHex = o.serialHex ?? randomSerialHex();
  // forge writes the hex as given: refuse one that is not a DER serial rather than sign it.
  if (!isCertificateSerialHex(serialHex)) throw new RangeError(`not a positive, minimally encoded serial of at most 20 octets (RFC 5280 §4.1.2.2): ${serialHex}`);
  // eslint-disable-next-line no-restricted-syntax -- a caller's serial, checked just above
  cert.serialNumber = serialHex;
  cert.validity.notBefore = o.notBefore;
  cert.validity.notAfter = o.notAfter;
  const subject = [{ name: 'commonName', value: o.subjectCn }, ...(o.subjectOrg ? [{ name: 'organizationName', value: o.subjectOrg }] : [])];
  cert.setSubject(subject);
  cert.setIssuer(o.issuer ? o.issuer.cert.subject.attributes : subject);
  const aki = o.issuer ? skiBytes(o.issuer.cert) : skiBytes(cert);
  cert.setExtensions([...o.extensions, { name: 'subjectKeyIdentifier' }, { name: 'authorityKeyIdentifier', keyIdentifier: aki }]);
  const signingKey = o.issuer ? o.issuer.privateKeyPem : o.selfSignedKeyPem!;
  cert.sign(forgeKey(signingKey), forge.md.sha256.create());
  return cert;
}

const DAY = 86_400_000;

export function buildRootCa(opts: { keys: KeyPairPem; cn: string; org: string; days: number; now?: Date }): string {
  const now = opts.now ?? new Date();
  const cert = build({
    subjectCn: opts.cn,
    subjectOrg: opts.org,
    publicKey: pki.publicKeyFromPem(opts.keys.publicKeyPem),
    selfSignedKeyPem: opts.keys.privateKeyPem,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + opts.days * DAY),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  return pki.certificateToPem(cert);
}

export function buildIssuingCa(opts: { keys: KeyPairPem; cn: string; org: string; days: number; root: { certPem: string; privateKeyPem: string }; now?: Date }): string {
  const now = opts.now ?? new Date();
  const cert = build({
    subjectCn: opts.cn,
    subjectOrg: opts.org,
    publicKey: pki.publicKeyFromPem(opts.keys.publicKeyPem),
    issuer: { cert: pki.certificateFromPem(opts.root.certPem), privateKeyPem: opts.root.privateKeyPem },
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + opts.days * DAY),
    extensions: [
      // pathLenConstraint 0: it issues end-entity certificates only (RFC 5280 §4.2.1.9).
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  return pki.certificateToPem(cert);
}

export interface Issuer {
  certPem: string;
  privateKeyPem: string;
}

export function buildServerCert(opts: { publicKeyPem: string; names: string[]; days: number; issuer: Issuer; now?: Date }): string {
  const now = opts.now ?? new Date();
  const altNames = opts.names.map((n) => (/^[\d.]+$|:/.test(n) ? { type: 7, ip: n } : { type: 2, value: n }));
  const cert = build({
    subjectCn: opts.names[0]!,
    publicKey: pki.publicKeyFromPem(opts.publicKeyPem),
    issuer: { cert: pki.certificateFromPem(opts.issuer.certPem), privateKeyPem: opts.issuer.privateKeyPem },
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + opts.days * DAY),
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return pki.certificateToPem(cert);
}

/** Device profile: end entity, digitalSignature, clientAuth, CN = device id. */
export function buildDeviceCert(opts: { publicKey: forge.pki.PublicKey; deviceId: string; days: number; issuer: Issuer; serialHex: string; crlUrl?: string; now?: Date }): string {
  const now = opts.now ?? new Date();
  const cert = build({
    subjectCn: opts.deviceId,
    publicKey: opts.publicKey,
    issuer: { cert: pki.certificateFromPem(opts.issuer.certPem), privateKeyPem: opts.issuer.privateKeyPem },
    serialHex: opts.serialHex,
    notBefore: new Date(now.getTime() - 5 * 60_000), // tolerate device clocks a little behind
    notAfter: new Date(now.getTime() + opts.days * DAY),
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true },
      ...(opts.crlUrl ? [{ name: 'cRLDistributionPoints', altNames: [{ type: 6, value: opts.crlUrl }] }] : []),
    ],
  });
  return pki.certificateToPem(cert);
}

export interface RevokedEntry {
  serialHex: string;
  revokedAt: Date;
  /** RFC 5280 §5.3.1 CRLReason code. */
  reasonCode: number;
}

function integerFromHex(hex: string): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, forge.util.hexToBytes(derIntegerHex(hex)));
}

function time(date: Date): forge.asn1.Asn1 {
  // RFC 5280 §5.1.2.4: UTCTime through 2049, GeneralizedTime after.
  return date.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date));
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
export function buildCrl(opts: { issuer: Issuer; revoked: RevokedEntry[]; crlNumber: number; thisUpdate: Date; nextUpdate: Date }): Buffer {
  const issuerCert = pki.certificateFromPem(opts.issuer.certPem);
  const sha256WithRsa = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(pki.oids.sha256WithRSAEncryption!).getBytes()),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
  ]);
  const entries = opts.revoked.map((r) =>
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      integerFromHex(r.serialHex),
      time(r.revokedAt),
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
        extension('2.5.29.21', asn1.create(asn1.Class.UNIVERSAL, asn1.Type.ENUMERATED, false, String.fromCharCode(r.reasonCode))),
      ]),
    ]),
  );
  const tbs = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, String.fromCharCode(1)), // v2
    sha256WithRsa,
    pki.distinguishedNameToAsn1(issuerCert.subject),
    time(opts.thisUpdate),
    time(opts.nextUpdate),
    ...(entries.length ? [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, entries)] : []),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
        extension('2.5.29.20', integerFromHex(opts.crlNumber.toString(16))),
        extension('2.5.29.35', asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, skiBytes(issuerCert))])),
      ]),
    ]),
  ]);
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  const signature = sign('sha256', tbsDer, opts.issuer.privateKeyPem);
  const crl = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    sha256WithRsa,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\u0000${signature.toString('binary')}`),
  ]);
  return Buffer.from(asn1.toDer(crl).getBytes(), 'binary');
}

export function derToPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
