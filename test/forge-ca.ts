import { generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';
import { randomSerialHex } from '../provisioning/serial-fns.ts';

/**
 * A throwaway certificate authority for tests that need a *foreign* CA (a certificate our PKI
 * never issued) or certificates our PKI would refuse to make (already expired).
 */
export interface IssuedCert {
  key: string;
  cert: string;
  serialHex: string;
}

function keyPair(): {
  privatePem: string;
  publicKey: forge.pki.PublicKey;
  privateKey: forge.pki.rsa.PrivateKey;
} {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return {
    privatePem,
    privateKey: forge.pki.privateKeyFromPem(privatePem),
    publicKey: forge.pki.publicKeyFromPem(
      publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    ),
  };
}

export function createForeignCa(name = 'Foreign Test CA') {
  const ca = keyPair();
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = ca.publicKey;
  caCert.serialNumber = randomSerialHex();
  caCert.validity.notBefore = new Date(Date.now() - 86_400_000);
  caCert.validity.notAfter = new Date(Date.now() + 365 * 86_400_000);
  caCert.setSubject([{ name: 'commonName', value: name }]);
  caCert.setIssuer([{ name: 'commonName', value: name }]);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
  ]);
  caCert.sign(ca.privateKey, forge.md.sha256.create());
  const caPem = forge.pki.certificateToPem(caCert);

  return {
    caPem,
    issue(opts: {
      cn: string;
      notBefore?: Date;
      notAfter?: Date;
      usage?: 'clientAuth' | 'serverAuth';
      dnsNames?: string[];
    }): IssuedCert {
      const leaf = keyPair();
      const cert = forge.pki.createCertificate();
      cert.publicKey = leaf.publicKey;
      cert.serialNumber = randomSerialHex();
      const serialHex = cert.serialNumber;
      cert.validity.notBefore = opts.notBefore ?? new Date(Date.now() - 3_600_000);
      cert.validity.notAfter = opts.notAfter ?? new Date(Date.now() + 30 * 86_400_000);
      cert.setSubject([{ name: 'commonName', value: opts.cn }]);
      cert.setIssuer(caCert.subject.attributes);
      const usage = opts.usage ?? 'clientAuth';
      cert.setExtensions([
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', [usage]: true },
        ...(opts.dnsNames
          ? [
              {
                name: 'subjectAltName',
                altNames: opts.dnsNames.map((value) =>
                  /^[\d.]+$/.test(value) ? { type: 7, ip: value } : { type: 2, value },
                ),
              },
            ]
          : []),
      ]);
      cert.sign(ca.privateKey, forge.md.sha256.create());
      return { key: leaf.privatePem, cert: forge.pki.certificateToPem(cert), serialHex };
    },
  };
}
