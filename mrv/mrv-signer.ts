import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { loadOrCreateSigningKey } from '../audit/signing-key-file.ts';
import type { Logger } from 'pino';
import { keyIdOf } from '../audit/audit-signer.ts';
import { reportSigningInput } from './mrv-report-fns.ts';

/**
 * The MRV report signing key: Ed25519, held like the audit and CA keys — under the PKI directory,
 * encrypted at rest with the PKI passphrase (PKCS#8, AES-256-CBC), never in the database. Its
 * public half (`mrv-signing.pub`) is served at /.well-known/thamani-mrv-key and printed by
 * `thamani mrv key`. A key of its own, not the audit key: a verifier trusts it for reports only.
 */

export const MRV_KEY_FILE = 'mrv-signing.key';
export const MRV_PUBLIC_KEY_FILE = 'mrv-signing.pub';

export interface MrvSigner {
  keyId: string;
  publicKeyPem: string;
  /** Ed25519 over the domain-separated canonical report body, base64. */
  signReport(report: unknown): string;
}

export function mrvSignerFromKey(privateKey: KeyObject): MrvSigner {
  if (privateKey.asymmetricKeyType !== 'ed25519')
    throw new Error(`the MRV signing key must be Ed25519, not ${privateKey.asymmetricKeyType}`);
  const publicKey = createPublicKey(privateKey);
  return {
    keyId: keyIdOf(publicKey),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    signReport: (report) => sign(null, reportSigningInput(report), privateKey).toString('base64'),
  };
}

/** Loads `<dir>/mrv-signing.key` (encrypted) or creates it on first use, with its `.pub`. */
export async function loadOrCreateMrvSigner(opts: {
  dir: string;
  passphrase: string;
}): Promise<MrvSigner> {
  return mrvSignerFromKey(
    await loadOrCreateSigningKey({
      ...opts,
      keyFile: MRV_KEY_FILE,
      publicKeyFile: MRV_PUBLIC_KEY_FILE,
    }),
  );
}

/** The signer of a process that has the PKI directory but not the CA loaded (CLI, API). */
export async function openMrvSigner(
  pki: { dir: string; passphrase: string | undefined },
  logger: Logger,
): Promise<MrvSigner> {
  const { resolvePassphrase } = await import('../provisioning/ca-store.ts');
  await mkdir(pki.dir, { recursive: true, mode: 0o700 });
  const passphrase = await resolvePassphrase({
    dir: pki.dir,
    passphrase: pki.passphrase,
    logger: logger.child({}, { level: 'error' }),
  });
  return loadOrCreateMrvSigner({ dir: pki.dir, passphrase });
}
