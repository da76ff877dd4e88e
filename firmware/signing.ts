import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Firmware signing: an Ed25519 key of its own (not the device CA's), its private half encrypted
 * at rest with the PKI passphrase (PKCS#8, AES-256-CBC). Manifests are signed over their
 * canonical JSON: the object's keys in lexicographic order, no whitespace (every field is a
 * string, number or null, so that is unambiguous). docs/device-contract.md, "Firmware updates".
 */

export interface FirmwareManifest {
  /** Manifest format version. */
  v: 1;
  rolloutId: string;
  deviceId: string;
  deviceKind: string;
  hardwareRevision: string | null;
  version: string;
  size: number;
  sha256: string;
  url: string;
  /** RFC 3339; a device refuses the manifest after it. */
  expiresAt: string;
}

/** What travels on `devices/{id}/firmware/manifest`. */
export interface SignedManifest {
  manifest: FirmwareManifest;
  /** Base64 Ed25519 signature over canonicalManifest(manifest). */
  signature: string;
  /** First 16 hex characters of the SHA-256 of the public key (DER SPKI). */
  keyId: string;
}

export function canonicalManifest(m: FirmwareManifest): string {
  const sorted = Object.fromEntries(
    Object.keys(m)
      .sort()
      .map((k) => [k, m[k as keyof FirmwareManifest]]),
  );
  return JSON.stringify(sorted);
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

export interface FirmwareSigner {
  publicKeyPem: string;
  keyId: string;
  sign(manifest: FirmwareManifest): SignedManifest;
}

export function signerFromKey(privateKey: KeyObject): FirmwareSigner {
  const publicKey = createPublicKey(privateKey);
  const keyId = keyIdOf(publicKey);
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId,
    sign: (manifest) => ({
      manifest,
      keyId,
      signature: sign(null, Buffer.from(canonicalManifest(manifest)), privateKey).toString(
        'base64',
      ),
    }),
  };
}

/** Loads `<dir>/firmware-signing.key` (encrypted) or creates it on first start. */
export async function loadOrCreateSigner(opts: {
  dir: string;
  passphrase: string;
}): Promise<FirmwareSigner> {
  const file = path.join(opts.dir, 'firmware-signing.key');
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch {
    await mkdir(opts.dir, { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    pem = privateKey
      .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: opts.passphrase })
      .toString();
    await writeFile(file, pem, { mode: 0o600, flag: 'wx' }).catch(() => undefined);
    pem = await readFile(file, 'utf8');
    const signer = signerFromKey(createPrivateKey({ key: pem, passphrase: opts.passphrase }));
    await writeFile(path.join(opts.dir, 'firmware-signing.pub'), signer.publicKeyPem, {
      mode: 0o644,
    });
    return signer;
  }
  return signerFromKey(createPrivateKey({ key: pem, passphrase: opts.passphrase }));
}

export type ManifestRefusal =
  'MALFORMED' | 'UNKNOWN_KEY' | 'BAD_SIGNATURE' | 'EXPIRED' | 'NOT_FOR_ME';

/** The device's check (the simulator runs it; real firmware does the same with its pinned key). */
export function verifyManifest(
  message: unknown,
  publicKeyPem: string,
  me: { deviceId: string; now?: Date },
): { ok: true; manifest: FirmwareManifest } | { ok: false; reason: ManifestRefusal } {
  const m = message as Partial<SignedManifest> | null;
  if (
    !m ||
    typeof m !== 'object' ||
    !m.manifest ||
    typeof m.signature !== 'string' ||
    typeof m.manifest !== 'object'
  )
    return { ok: false, reason: 'MALFORMED' };
  const publicKey = createPublicKey(publicKeyPem);
  if (m.keyId !== keyIdOf(publicKey)) return { ok: false, reason: 'UNKNOWN_KEY' };
  if (
    !verify(
      null,
      Buffer.from(canonicalManifest(m.manifest)),
      publicKey,
      Buffer.from(m.signature, 'base64'),
    )
  )
    return { ok: false, reason: 'BAD_SIGNATURE' };
  if (m.manifest.deviceId !== me.deviceId) return { ok: false, reason: 'NOT_FOR_ME' };
  const expires = Date.parse(m.manifest.expiresAt);
  if (!Number.isFinite(expires) || expires <= (me.now ?? new Date()).getTime())
    return { ok: false, reason: 'EXPIRED' };
  return { ok: true, manifest: m.manifest };
}
