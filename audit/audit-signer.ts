import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { loadOrCreateSigningKey } from './signing-key-file.ts';
import { checkpointSigningInput, entrySigningInput, type CheckpointBody } from './audit-fns.ts';

/**
 * The audit signing key: Ed25519, kept next to the CA keys under the PKI directory and encrypted
 * at rest with the PKI passphrase (PKCS#8, AES-256-CBC), like the firmware signing key. The
 * database never holds it, so a row written with database credentials alone cannot carry a
 * valid signature. Its public half (`audit-signing.pub`) is what a third-party verifier needs.
 * docs/decisions/0004-audit-signatures.md. No database import here: the offline verifier uses it.
 */

export const AUDIT_KEY_FILE = 'audit-signing.key';
export const AUDIT_PUBLIC_KEY_FILE = 'audit-signing.pub';

export interface AuditSigner {
  keyId: string;
  publicKeyPem: string;
  /** Ed25519 over the entry's hash (domain-separated). */
  signEntry(hash: Buffer): Buffer;
  /** Ed25519 over the checkpoint body (domain-separated), base64. */
  signCheckpoint(body: CheckpointBody): string;
}

/** First 16 hex characters of the SHA-256 of the public key (DER SPKI), as for firmware keys. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

export function signerFromKey(privateKey: KeyObject): AuditSigner {
  if (privateKey.asymmetricKeyType !== 'ed25519')
    throw new Error(`the audit signing key must be Ed25519, not ${privateKey.asymmetricKeyType}`);
  const publicKey = createPublicKey(privateKey);
  return {
    keyId: keyIdOf(publicKey),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    signEntry: (hash) => sign(null, entrySigningInput(hash), privateKey),
    signCheckpoint: (body) =>
      sign(null, checkpointSigningInput(body), privateKey).toString('base64'),
  };
}

/** A signer whose key lives only in memory (tests, benchmarks): nothing can verify it later. */
export function ephemeralAuditSigner(): AuditSigner {
  return signerFromKey(generateKeyPairSync('ed25519').privateKey);
}

/** Loads `<dir>/audit-signing.key` (encrypted) or creates it on first use, with its `.pub`. */
export async function loadOrCreateAuditSigner(opts: {
  dir: string;
  passphrase: string;
}): Promise<AuditSigner> {
  return signerFromKey(
    await loadOrCreateSigningKey({
      ...opts,
      keyFile: AUDIT_KEY_FILE,
      publicKeyFile: AUDIT_PUBLIC_KEY_FILE,
    }),
  );
}

/** Trusted public keys by key id, from PEM text holding one or more `PUBLIC KEY` blocks. */
export function parsePublicKeys(pemText: string): Map<string, KeyObject> {
  const blocks = pemText.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? [];
  if (blocks.length === 0) throw new Error('no PEM "PUBLIC KEY" block found');
  const keys = new Map<string, KeyObject>();
  for (const block of blocks) {
    const key = createPublicKey(block);
    if (key.asymmetricKeyType !== 'ed25519')
      throw new Error(`audit public keys are Ed25519, not ${key.asymmetricKeyType}`);
    keys.set(keyIdOf(key), key);
  }
  return keys;
}

export function publicKeysOf(
  ...signers: Pick<AuditSigner, 'publicKeyPem'>[]
): Map<string, KeyObject> {
  return parsePublicKeys(signers.map((s) => s.publicKeyPem).join('\n'));
}

export function verifyEntrySignature(key: KeyObject, hash: Buffer, signature: Buffer): boolean {
  return verify(null, entrySigningInput(hash), key, signature);
}

export function verifyCheckpointSignature(
  key: KeyObject,
  body: CheckpointBody,
  signatureB64: string,
): boolean {
  return verify(null, checkpointSigningInput(body), key, Buffer.from(signatureB64, 'base64'));
}
