import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { fromDer } from './asn1-fns.ts';
import { PkiErrors } from './pki-errors.ts';

/**
 * A device's PKCS#10 request (RFC 2986), parsed with forge.asn1 and verified with node:crypto:
 * forge's own CSR parser knows RSA only (ADR 0002). What is accepted, and every refusal's code:
 *
 * - CSR_MALFORMED: not one PEM "CERTIFICATE REQUEST" block of strict DER of the §4 structure;
 * - CSR_UNSUPPORTED_KEY: a key other than RSA 2048-4096 bits with an odd exponent in
 *   [65537, 2^256) (NIST SP 800-56B Rev. 2 §6.2), or EC on P-256 (secp256r1) as a named curve
 *   with an uncompressed point on the curve (RFC 5480 §2.1.1, §2.2);
 * - CSR_UNSUPPORTED_SIGNATURE: signed other than SHA-256/384/512 with RSA PKCS#1 v1.5 or ECDSA
 *   (no SHA-1, no PSS);
 * - CSR_BAD_SIGNATURE: the self-signature (proof of possession) does not verify with the key;
 * - CSR_CN_MISMATCH: the subject does not hold exactly one CN, equal to the device id.
 */
export type DeviceKeyAlgorithm = 'rsa-2048' | 'rsa-3072' | 'rsa-4096' | `rsa-${number}` | 'ec-p256';

export interface CheckedCsr {
  publicKey: KeyObject;
  keyAlgorithm: DeviceKeyAlgorithm;
}

const MAX_PEM_CHARS = 64 * 1024;
const OID = {
  rsaEncryption: '1.2.840.113549.1.1.1',
  ecPublicKey: '1.2.840.10045.2.1',
  p256: '1.2.840.10045.3.1.7',
  commonName: '2.5.4.3',
} as const;
const CURVE_NAMES: Record<string, string> = {
  '1.3.132.0.34': 'P-384',
  '1.3.132.0.35': 'P-521',
  '1.3.132.0.10': 'secp256k1',
  '1.3.36.3.3.2.8.1.1.7': 'brainpoolP256r1',
};
const SIGNATURES: Record<string, { hash: string; key: 'rsa' | 'ec' }> = {
  '1.2.840.113549.1.1.11': { hash: 'sha256', key: 'rsa' },
  '1.2.840.113549.1.1.12': { hash: 'sha384', key: 'rsa' },
  '1.2.840.113549.1.1.13': { hash: 'sha512', key: 'rsa' },
  '1.2.840.10045.4.3.2': { hash: 'sha256', key: 'ec' },
  '1.2.840.10045.4.3.3': { hash: 'sha384', key: 'ec' },
  '1.2.840.10045.4.3.4': { hash: 'sha512', key: 'ec' },
};

const { asn1 } = forge;
type Node = forge.asn1.Asn1;
const children = (n: Node | undefined): Node[] => (n && Array.isArray(n.value) ? n.value : []);
const bytesOf = (n: Node): string => (typeof n.value === 'string' ? n.value : '');
const oidOf = (n: Node | undefined): string | undefined =>
  n && n.tagClass === asn1.Class.UNIVERSAL && n.type === asn1.Type.OID
    ? asn1.derToOid(bytesOf(n))
    : undefined;
const is = (n: Node | undefined, type: forge.asn1.Type, constructed: boolean): n is Node =>
  !!n && n.tagClass === asn1.Class.UNIVERSAL && n.type === type && n.constructed === constructed;

function malformed(why: string): never {
  throw new PkiErrors.CsrMalformed(why);
}

/**
 * PEM to the DER of the one CERTIFICATE REQUEST block. Text around it is allowed (RFC 7468 §2:
 * `openssl req -text` puts a dump before it); two blocks, headers or non-base64 inside are not.
 */
function pemToDer(csrPem: unknown): string {
  if (typeof csrPem !== 'string' || !csrPem.includes('-----BEGIN CERTIFICATE REQUEST-----'))
    malformed('no "BEGIN CERTIFICATE REQUEST" block');
  if (csrPem.length > MAX_PEM_CHARS) malformed(`longer than ${MAX_PEM_CHARS} characters`);
  if (csrPem.split('-----BEGIN ').length !== 2) malformed('more than one PEM block');
  const m =
    /(?:^|\n)-----BEGIN CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE REQUEST-----(?:\r?\n|$)/.exec(
      csrPem,
    );
  if (!m) malformed('the PEM block is not base64 between its own lines');
  const b64 = m[1]!.replace(/\s/g, '');
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64))
    malformed('the PEM body is not base64');
  return Buffer.from(b64, 'base64').toString('binary');
}

/** The subject public key, if it is one we certify (see above). */
function checkKey(spki: Node): CheckedCsr {
  const [algorithm, bits] = children(spki);
  const [algOid, params] = children(algorithm);
  const oid = oidOf(algOid);
  if (!is(bits, asn1.Type.BITSTRING, false)) malformed('subjectPublicKeyInfo has no BIT STRING');
  const unsupported = (why: string): never => {
    throw new PkiErrors.CsrUnsupportedKey(why);
  };
  let key: KeyObject;
  const load = (): KeyObject => {
    try {
      return createPublicKey({
        key: Buffer.from(asn1.toDer(spki).getBytes(), 'binary'),
        format: 'der',
        type: 'spki',
      });
    } catch {
      return unsupported(
        oid === OID.ecPublicKey ? 'the EC point is not on P-256' : 'the public key does not parse',
      );
    }
  };
  if (oid === OID.ecPublicKey) {
    const curve = oidOf(params);
    if (curve === undefined)
      unsupported('EC with explicit curve parameters (only the named curve P-256)');
    if (curve !== OID.p256) unsupported(`EC on ${CURVE_NAMES[curve!] ?? curve} (only P-256)`);
    const point = bytesOf(bits);
    // "\0" unused bits, then 0x04 || X || Y: 65 octets (RFC 5480 §2.2, SEC 1 §2.3.3).
    if (point.length !== 66 || point.charCodeAt(0) !== 0 || point.charCodeAt(1) !== 0x04)
      unsupported('EC point not in uncompressed form');
    key = load();
    return { publicKey: key, keyAlgorithm: 'ec-p256' };
  }
  if (oid !== OID.rsaEncryption)
    unsupported(`key algorithm ${oid ?? 'unknown'} (RSA or EC P-256 only)`);
  key = load();
  const jwk = key.export({ format: 'jwk' });
  const n = Buffer.from(jwk.n ?? '', 'base64url');
  const e = Buffer.from(jwk.e ?? '', 'base64url');
  const modulusBits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (modulusBits < 2048) unsupported(`${modulusBits}-bit RSA (at least 2048)`);
  if (modulusBits > 4096) unsupported(`${modulusBits}-bit RSA (at most 4096)`);
  if ((n.at(-1)! & 1) === 0) unsupported('RSA modulus is even');
  const eBig = BigInt(`0x${e.toString('hex') || '0'}`);
  if (eBig < 65537n || eBig >= 1n << 256n || (eBig & 1n) === 0n)
    unsupported(
      `RSA public exponent ${eBig > 1n << 64n ? 'out of range' : eBig} (odd, 65537 to 2^256)`,
    );
  return { publicKey: key, keyAlgorithm: `rsa-${modulusBits}` };
}

function commonNames(subject: Node): string[] {
  const names: string[] = [];
  for (const rdn of children(subject)) {
    for (const atv of children(rdn)) {
      const [type, value] = children(atv);
      if (oidOf(type) !== OID.commonName || !value) continue;
      const raw = bytesOf(value);
      const octets = Buffer.from(raw, 'binary');
      if (value.type === asn1.Type.UTF8) names.push(octets.toString('utf8'));
      else if (value.type === asn1.Type.BMPSTRING && octets.length % 2 === 0)
        names.push(octets.swap16().toString('utf16le'));
      else names.push(raw); // PrintableString, IA5String: ASCII
    }
  }
  return names;
}

/** Checks a device's CSR (see above); returns the public key to certify and what it is. */
export function checkCsr(csrPem: string, deviceId: string): CheckedCsr {
  const der = pemToDer(csrPem);
  let csr: Node;
  try {
    csr = fromDer(der);
  } catch (err) {
    return malformed(err instanceof Error ? err.message : String(err));
  }
  // Strict DER only (X.690 §10): the signed bytes must be exactly what is verified.
  if (asn1.toDer(csr).getBytes() !== der) malformed('not DER');
  const [info, sigAlg, signature] = children(csr);
  const [version, subject, spki, attributes] = children(info);
  if (
    !is(csr, asn1.Type.SEQUENCE, true) ||
    children(csr).length !== 3 ||
    !is(info, asn1.Type.SEQUENCE, true) ||
    !is(sigAlg, asn1.Type.SEQUENCE, true) ||
    !is(signature, asn1.Type.BITSTRING, false)
  ) {
    malformed('not a CertificationRequest (RFC 2986 §4.2)');
  }
  if (!is(version, asn1.Type.INTEGER, false) || bytesOf(version) !== '\u0000')
    malformed('version is not 0 (RFC 2986 §4.1)');
  if (!is(subject, asn1.Type.SEQUENCE, true) || !is(spki, asn1.Type.SEQUENCE, true))
    malformed('no subject or subjectPKInfo');
  if (
    !attributes ||
    attributes.tagClass !== asn1.Class.CONTEXT_SPECIFIC ||
    (attributes.type as number) !== 0 ||
    children(info).length !== 4
  )
    malformed('no attributes [0] (RFC 2986 §4.1)');
  const checked = checkKey(spki);
  const sigOid = oidOf(children(sigAlg)[0]);
  const scheme = sigOid ? SIGNATURES[sigOid] : undefined;
  if (!scheme) throw new PkiErrors.CsrUnsupportedSignature(sigOid ?? 'an unknown algorithm');
  const sig = bytesOf(signature);
  let verified = false;
  if (
    scheme.key === (checked.keyAlgorithm === 'ec-p256' ? 'ec' : 'rsa') &&
    sig.charCodeAt(0) === 0
  ) {
    try {
      verified = verify(
        scheme.hash,
        Buffer.from(asn1.toDer(info).getBytes(), 'binary'),
        checked.publicKey,
        Buffer.from(sig.slice(1), 'binary'),
      );
    } catch {
      verified = false;
    }
  }
  if (!verified) throw new PkiErrors.CsrBadSignature();
  const cns = commonNames(subject);
  if (cns.length !== 1 || cns[0] !== deviceId)
    throw new PkiErrors.CsrCnMismatch(deviceId, JSON.stringify(cns.length === 1 ? cns[0] : cns));
  return checked;
}
