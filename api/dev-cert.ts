import { generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';
// The pure serial module, not provisioning's index: this runs before (and without) the PKI.
import { randomSerialHex } from '../provisioning/serial-fns.ts';

/**
 * A throwaway self-signed server certificate for development and tests, until the PKI issues
 * the real one (provisioning/). Never used when HTTPS_CERT_FILE/HTTPS_KEY_FILE are set.
 */
export function selfSignedCertificate(hostname: string, days = 30): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(
    publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  );
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + days * 86_400_000);
  const subject = [{ name: 'commonName', value: hostname }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  const isIp = /^[0-9.]+$/.test(hostname);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        isIp ? { type: 7, ip: hostname } : { type: 2, value: hostname },
        { type: 7, ip: '127.0.0.1' },
      ],
    },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keyPem };
}
