import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * An Ed25519 signing key kept like the CA keys: a PKCS#8 file in the PKI directory, encrypted
 * with the PKI passphrase, never in the database; its public key beside it as `.pub` for
 * verifiers. Created on first use. Used by the audit log (ADR 0004) and MRV reports (docs/mrv.md).
 * No database import here: the offline verifiers load this module's neighbours.
 */
export async function loadOrCreateSigningKey(opts: {
  dir: string;
  passphrase: string;
  keyFile: string;
  publicKeyFile: string;
}): Promise<KeyObject> {
  const file = path.join(opts.dir, opts.keyFile);
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
    // wx: the API, the gateway and a CLI command may start at once; the first writer wins and all read its key.
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
  if (key.asymmetricKeyType !== 'ed25519')
    throw new Error(`${file} must hold an Ed25519 key, not ${key.asymmetricKeyType}`);
  const publicKeyPem = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
  const pub = path.join(opts.dir, opts.publicKeyFile);
  const existing = await readFile(pub, 'utf8').catch(() => undefined);
  if (existing !== publicKeyPem) await writeFile(pub, publicKeyPem, { mode: 0o644 });
  return key;
}
