import forge from 'node-forge';
import { PkiErrors } from './pki-errors.ts';

/**
 * Checks a device's PKCS#10 request: PEM, RSA ≥ 2048 bits, self-signature valid, subject CN =
 * the device id. Returns the public key to certify. (node-forge parses RSA requests only; EC keys
 * are refused with a clear code, ADR 0002.)
 */
export function checkCsr(csrPem: string, deviceId: string): forge.pki.PublicKey {
  if (typeof csrPem !== 'string' || !csrPem.includes('-----BEGIN CERTIFICATE REQUEST-----')) {
    throw new PkiErrors.CsrMalformed('no "BEGIN CERTIFICATE REQUEST" block');
  }
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/OID is not RSA/i.test(message)) throw new PkiErrors.CsrUnsupportedKey('the request carries a non-RSA key');
    throw new PkiErrors.CsrMalformed(message);
  }
  const key = csr.publicKey as forge.pki.rsa.PublicKey | null;
  if (!key || typeof key.n?.bitLength !== 'function') throw new PkiErrors.CsrUnsupportedKey('no RSA public key');
  if (key.n.bitLength() < 2048) throw new PkiErrors.CsrUnsupportedKey(`${key.n.bitLength()}-bit RSA`);
  let verified = false;
  try {
    verified = csr.verify();
  } catch {
    verified = false;
  }
  if (!verified) throw new PkiErrors.CsrBadSignature();
  const cn = csr.subject.getField('CN') as { value: string } | null;
  if (cn?.value !== deviceId) throw new PkiErrors.CsrCnMismatch(deviceId, JSON.stringify(cn?.value ?? null));
  return key;
}
