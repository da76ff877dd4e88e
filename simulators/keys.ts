import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import forge from 'node-forge';
import { generateP256KeyPair, generateRsaKeyPair } from '../provisioning/x509-fns.ts';

import type { DeviceKeyType } from './key-types.ts';

export { deviceKeyTypes, type DeviceKeyType } from './key-types.ts';

const { asn1 } = forge;
const OID = {
  sha256WithRsa: '1.2.840.113549.1.1.11',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
} as const;

const oid = (id: string): forge.asn1.Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(id).getBytes());
const seq = (value: forge.asn1.Asn1[]): forge.asn1.Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, value);

/** The parts of a PKCS#10 request (RFC 2986 §4), so that tests can also make wrong ones. */
export interface CsrParts {
  /** One CN, or several (each its own RDN) to make a subject we must refuse. */
  subjectCn: string | string[];
  /** DER SubjectPublicKeyInfo. */
  spkiDer: Buffer;
  /** The signatureAlgorithm OID and whether it carries a NULL parameter (RSA) or none (ECDSA, RFC 5758 §3.2). */
  signatureOid: string;
  nullParameter: boolean;
  /** Signs the DER CertificationRequestInfo. */
  sign(info: Buffer): Buffer;
}

/** A PEM CSR from its parts: one encoder for RSA and EC (forge signs RSA requests only). */
export function encodeCsr(p: CsrParts): string {
  const cns = typeof p.subjectCn === 'string' ? [p.subjectCn] : p.subjectCn;
  const name = seq(
    cns.map((cn) =>
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [
        seq([
          oid(OID.commonName),
          asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTF8, false, forge.util.encodeUtf8(cn)),
        ]),
      ]),
    ),
  );
  const info = seq([
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, '\u0000'),
    name,
    asn1.fromDer(p.spkiDer.toString('binary')),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, []),
  ]);
  const signature = p.sign(Buffer.from(asn1.toDer(info).getBytes(), 'binary'));
  const csr = seq([
    info,
    seq([
      oid(p.signatureOid),
      ...(p.nullParameter ? [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '')] : []),
    ]),
    asn1.create(
      asn1.Class.UNIVERSAL,
      asn1.Type.BITSTRING,
      false,
      `\u0000${signature.toString('binary')}`,
    ),
  ]);
  const b64 = Buffer.from(asn1.toDer(csr).getBytes(), 'binary')
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n`;
}

/** A CSR with CN = deviceId signed with SHA-256 by the given private key (RSA or EC). */
export function csrFor(deviceId: string, privateKeyPem: string): string {
  const key = createPrivateKey(privateKeyPem);
  const ec = key.asymmetricKeyType === 'ec';
  return encodeCsr({
    subjectCn: deviceId,
    spkiDer: createPublicKey(key).export({ type: 'spki', format: 'der' }),
    signatureOid: ec ? OID.ecdsaWithSha256 : OID.sha256WithRsa,
    nullParameter: !ec,
    sign: (info) => sign('sha256', info, key),
  });
}

/** The type of a device's key, from the key itself (a renewal keeps it). */
export function keyTypeOf(privateKeyPem: string): DeviceKeyType {
  return createPrivateKey(privateKeyPem).asymmetricKeyType === 'ec' ? 'ec' : 'rsa';
}

/**
 * What a device does before enrolment: its own key pair and a CSR with CN = its id. P-256 by
 * default, as the secure elements devices keep keys in make (ADR 0002); RSA 2048 on request.
 */
export function deviceKeyAndCsr(
  deviceId: string,
  type: DeviceKeyType = 'ec',
): { key: string; csr: string } {
  const keys = type === 'ec' ? generateP256KeyPair() : generateRsaKeyPair(2048);
  return { key: keys.privateKeyPem, csr: csrFor(deviceId, keys.privateKeyPem) };
}
