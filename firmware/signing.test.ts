import { spawnSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireTool } from '../test/tools.ts';
import {
  canonicalManifest,
  loadOrCreateSigner,
  verifyManifest,
  type FirmwareManifest,
} from './signing.ts';

const manifest: FirmwareManifest = {
  v: 1,
  rolloutId: '1d81ea8f-7737-4a30-a9d6-7aa786f3f79b',
  deviceId: 'bd-sign-1',
  deviceKind: 'biodigester',
  hardwareRevision: null,
  version: '1.4.0',
  size: 3,
  sha256: 'ab'.repeat(32),
  url: 'https://gw/firmware/x',
  expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
};

describe('firmware signing key', () => {
  it('is Ed25519, encrypted at rest (mode 0600), and the same key on the next start', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fw-sign-'));
    const a = await loadOrCreateSigner({ dir, passphrase: 'signing test passphrase' });
    const file = path.join(dir, 'firmware-signing.key');
    const pem = readFileSync(file, 'utf8');
    expect(pem).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(() => createPrivateKey({ key: pem, passphrase: 'wrong' })).toThrow();
    expect(
      createPrivateKey({ key: pem, passphrase: 'signing test passphrase' }).asymmetricKeyType,
    ).toBe('ed25519');
    expect(readFileSync(path.join(dir, 'firmware-signing.pub'), 'utf8')).toBe(a.publicKeyPem);
    const b = await loadOrCreateSigner({ dir, passphrase: 'signing test passphrase' });
    expect(b.keyId).toBe(a.keyId);
    expect(verifyManifest(a.sign(manifest), b.publicKeyPem, { deviceId: 'bd-sign-1' })).toEqual({
      ok: true,
      manifest,
    });
  });

  it('signs the canonical form: key order does not matter, any changed field does', async () => {
    const signer = await loadOrCreateSigner({
      dir: mkdtempSync(path.join(os.tmpdir(), 'fw-sign-')),
      passphrase: 'x'.repeat(20),
    });
    const reordered = Object.fromEntries(
      Object.entries(manifest).reverse(),
    ) as unknown as FirmwareManifest;
    expect(canonicalManifest(reordered)).toBe(canonicalManifest(manifest));
    const signed = signer.sign(manifest);
    expect(
      verifyManifest({ ...signed, manifest: reordered }, signer.publicKeyPem, {
        deviceId: 'bd-sign-1',
      }).ok,
    ).toBe(true);
    expect(
      verifyManifest({ ...signed, manifest: { ...manifest, size: 4 } }, signer.publicKeyPem, {
        deviceId: 'bd-sign-1',
      }),
    ).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
    expect(verifyManifest(signed, signer.publicKeyPem, { deviceId: 'bd-other' })).toEqual({
      ok: false,
      reason: 'NOT_FOR_ME',
    });
    expect(verifyManifest('nonsense', signer.publicKeyPem, { deviceId: 'bd-sign-1' })).toEqual({
      ok: false,
      reason: 'MALFORMED',
    });
  });

  it('verifies on a device without Node: the jq + openssl recipe of docs/device-contract.md', async () => {
    if (!requireTool('jq') || !requireTool('openssl')) return;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fw-sign-'));
    const signer = await loadOrCreateSigner({ dir, passphrase: 'x'.repeat(20) });
    writeFileSync(path.join(dir, 'fw.pub'), signer.publicKeyPem);
    // As the device receives it: the keys in whatever order the sender chose.
    const signed = signer.sign(manifest);
    const recipe = `jq -jcS .manifest message.json > manifest.bin && jq -r .signature message.json | base64 -d > manifest.sig && openssl pkeyutl -verify -pubin -inkey fw.pub -rawin -in manifest.bin -sigfile manifest.sig`;
    const run = (message: unknown) => {
      writeFileSync(path.join(dir, 'message.json'), JSON.stringify(message, null, 2));
      return spawnSync('sh', ['-c', recipe], { cwd: dir, encoding: 'utf8' });
    };
    const reordered = {
      signature: signed.signature,
      keyId: signed.keyId,
      manifest: Object.fromEntries(Object.entries(manifest).reverse()),
    };
    const ok = run(reordered);
    expect(ok.stdout + ok.stderr).toMatch(/Signature Verified Successfully/);
    expect(ok.status).toBe(0);
    expect(readFileSync(path.join(dir, 'manifest.bin'), 'utf8')).toBe(canonicalManifest(manifest));
    const tampered = run({
      ...reordered,
      manifest: { ...reordered.manifest, url: 'https://evil.example/x' },
    });
    expect(tampered.status).not.toBe(0);
  });
});
