import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { testLogger } from '../test/db.ts';
import { importCa, loadOrCreateCa } from './ca-store.ts';
import { encryptPrivateKey } from './x509-fns.ts';

const tmp = (): string => mkdtempSync(path.join(os.tmpdir(), 'thamani-ca-'));
const opts = (dir: string, passphrase: string) => ({
  dir,
  passphrase,
  serverNames: ['gw.example.ke', 'localhost'],
  serverCertDays: 90,
  logger: testLogger,
});

describe('CA store', () => {
  it('creates the CA once and loads the same one after a restart; a wrong passphrase is a clear error', async () => {
    const dir = tmp();
    const first = await loadOrCreateCa(opts(dir, 'first passphrase 1234'));
    const again = await loadOrCreateCa(opts(dir, 'first passphrase 1234'));
    expect(again.rootCertPem).toBe(first.rootCertPem);
    expect(again.issuing.certPem).toBe(first.issuing.certPem);
    expect(again.server.certPem).toBe(first.server.certPem); // same names, far from expiry
    await expect(loadOrCreateCa(opts(dir, 'not the passphrase!!'))).rejects.toThrow(
      /cannot decrypt .*issuing\.key: wrong PKI_PASSPHRASE/,
    );
  });

  it('imports an existing CA (root, issuing, key) and re-encrypts the key with our passphrase', async () => {
    const source = await loadOrCreateCa(opts(tmp(), 'source passphrase 12'));
    const target = tmp();
    await importCa({
      ...opts(target, 'target passphrase 12'),
      rootCertPem: source.rootCertPem,
      issuingCertPem: source.issuing.certPem,
      issuingKeyPem: encryptPrivateKey(source.issuing.privateKeyPem, 'their own passphrase'),
      keyPassphrase: 'their own passphrase',
    });
    expect(readFileSync(path.join(target, 'issuing.key'), 'utf8')).toMatch(
      /^-----BEGIN ENCRYPTED PRIVATE KEY-----/,
    );
    const loaded = await loadOrCreateCa(opts(target, 'target passphrase 12'));
    expect(loaded.issuing.certPem).toBe(source.issuing.certPem);
    expect(loaded.issuing.privateKeyPem).toBe(source.issuing.privateKeyPem);
    // No root key was imported: no root CRL can be made, and the gateway says so.
    expect(loaded.rootCrlPem).toBeUndefined();
  });

  it('refuses an import whose key or chain does not match', async () => {
    const a = await loadOrCreateCa(opts(tmp(), 'passphrase aaaaaaaa'));
    const b = await loadOrCreateCa(opts(tmp(), 'passphrase bbbbbbbb'));
    await expect(
      importCa({
        ...opts(tmp(), 'x passphrase 123456'),
        rootCertPem: a.rootCertPem,
        issuingCertPem: a.issuing.certPem,
        issuingKeyPem: b.issuing.privateKeyPem,
      }),
    ).rejects.toThrow(/does not belong to the issuing certificate/);
    await expect(
      importCa({
        ...opts(tmp(), 'x passphrase 123456'),
        rootCertPem: b.rootCertPem,
        issuingCertPem: a.issuing.certPem,
        issuingKeyPem: a.issuing.privateKeyPem,
      }),
    ).rejects.toThrow(/not signed by the root/);
  });
});
