import forge from 'node-forge';
import { generateRsaKeyPair } from '../provisioning/x509-fns.ts';

/** What a device does before enrolment: its own key pair and a CSR with CN = its id. */
export function deviceKeyAndCsr(deviceId: string): { key: string; csr: string } {
  const keys = generateRsaKeyPair(2048);
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(keys.publicKeyPem);
  csr.setSubject([{ name: 'commonName', value: deviceId }]);
  csr.sign(forge.pki.privateKeyFromPem(keys.privateKeyPem), forge.md.sha256.create());
  return { key: keys.privateKeyPem, csr: forge.pki.certificationRequestToPem(csr) };
}
