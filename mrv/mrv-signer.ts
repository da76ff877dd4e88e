import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  type KeyObject,
} from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
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
  const file = path.join(opts.dir, MRV_KEY_FILE);
  let pem = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (pem === undefined) {
    await mkdir(opts.dir, { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    const fresh = privateKey
      .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: opts.passphrase })
      .toString();
    // wx: the API and a CLI command may start at once; the first writer wins and all read its key.
    await writeFile(file, fresh, { mode: 0o600, flag: 'wx' }).catch(
      (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      },
    );
    pem = await readFile(file, 'utf8');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, passphrase: opts.passphrase });
  } catch (err) {
    throw new Error(`cannot decrypt ${file}: wrong PKI_PASSPHRASE?`, { cause: err });
  }
  const signer = mrvSignerFromKey(key);
  const pub = path.join(opts.dir, MRV_PUBLIC_KEY_FILE);
  const existing = await readFile(pub, 'utf8').catch(() => undefined);
  if (existing !== signer.publicKeyPem) await writeFile(pub, signer.publicKeyPem, { mode: 0o644 });
  return signer;
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
