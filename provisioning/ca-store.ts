import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import forge from 'node-forge';
import type { Logger } from 'pino';
import {
  buildCrl,
  buildIssuingCa,
  buildRootCa,
  buildServerCert,
  decryptPrivateKey,
  derToPem,
  encryptPrivateKey,
  generateRsaKeyPair,
} from './x509-fns.ts';

/**
 * The CA on disk, under <dataDir>/pki (0700):
 *   root.crt, root.key         root CA (RSA 3072, 20 years); its key is only needed to re-issue the issuing CA
 *   issuing.crt, issuing.key   issuing CA (RSA 3072, 10 years, pathLen 0): signs devices, servers and CRLs
 *   server.crt, server.key     the broker's and API's TLS certificate (SAN from config)
 *   passphrase                 development only: the generated passphrase (production passes PKI_PASSPHRASE)
 * Every .key is PKCS#8 encrypted with the passphrase. RSA 3072 for the CAs: 128-bit security
 * (NIST SP 800-57) for the lifetime of a 20-year anchor, and every device TLS stack verifies RSA.
 */

export interface LoadedCa {
  rootCertPem: string;
  issuing: { certPem: string; privateKeyPem: string };
  server: { certPem: string; privateKeyPem: string };
  /** issuing + root, what a device needs to verify the server and send with its own certificate. */
  chainPem: string;
  /** Trust anchors for client certificates. */
  caPems: string[];
  /**
   * The root's CRL (revoked issuing CAs; normally empty). Node checks CRLs for the whole chain
   * once any CRL is configured, so the TLS listeners need it next to the issuing CA's CRL.
   * Undefined for an imported CA whose root.crl was not supplied.
   */
  rootCrlPem: string | undefined;
  /** The passphrase the CA keys are encrypted with; other keys kept here (firmware signing) use it too. */
  keyPassphrase: string;
}

export interface CaStoreOptions {
  dir: string;
  passphrase: string | undefined;
  serverNames: string[];
  serverCertDays: number;
  logger: Logger;
  org?: string;
}

const mode = { dir: 0o700, file: 0o600 };

async function read(file: string): Promise<string | undefined> {
  return fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
}

async function write(file: string, content: string): Promise<void> {
  const tmp = `${file}.tmp`;
  await fs.writeFile(tmp, content, { mode: mode.file });
  await fs.rename(tmp, file);
}

/** PKI_PASSPHRASE, else the development one kept in the PKI directory (made on first use); other keys kept here (audit signing) use it too. */
export async function resolvePassphrase(
  o: Pick<CaStoreOptions, 'dir' | 'passphrase' | 'logger'>,
): Promise<string> {
  if (o.passphrase) return o.passphrase;
  const file = path.join(o.dir, 'passphrase');
  const existing = await read(file);
  if (existing) {
    o.logger.warn(
      { file },
      'DEVELOPMENT CA: the CA key passphrase is stored next to the keys. Set PKI_PASSPHRASE (or PKI_PASSPHRASE_FILE) for anything real.',
    );
    return existing.trim();
  }
  const generated = randomBytes(32).toString('base64url');
  await write(file, `${generated}\n`);
  o.logger.warn(
    { file },
    'DEVELOPMENT CA: generated a CA key passphrase and stored it next to the keys. Set PKI_PASSPHRASE (or PKI_PASSPHRASE_FILE) for anything real.',
  );
  return generated;
}

function serverCertNeedsRenewal(certPem: string, names: string[]): boolean {
  const cert = forge.pki.certificateFromPem(certPem);
  const san = cert.getExtension('subjectAltName') as {
    altNames?: { value?: string; ip?: string }[];
  } | null;
  const have = new Set((san?.altNames ?? []).map((n) => n.ip ?? n.value));
  const thirtyDays = Date.now() + 30 * 86_400_000;
  return cert.validity.notAfter.getTime() < thirtyDays || names.some((n) => !have.has(n));
}

export async function loadOrCreateCa(o: CaStoreOptions): Promise<LoadedCa> {
  await fs.mkdir(o.dir, { recursive: true, mode: mode.dir });
  await fs.chmod(o.dir, mode.dir);
  const passphrase = await resolvePassphrase(o);
  const f = (name: string): string => path.join(o.dir, name);
  const org = o.org ?? 'Thamani IoT';

  let rootCertPem = await read(f('root.crt'));
  let issuingCertPem = await read(f('issuing.crt'));
  let issuingKeyEnc = await read(f('issuing.key'));
  if (!rootCertPem) {
    if (existsSync(f('issuing.crt')))
      throw new Error(
        `${o.dir} has an issuing CA but no root.crt: restore it or import the CA again`,
      );
    o.logger.warn({ dir: o.dir }, 'no CA found: creating a root and an issuing CA');
    const rootKeys = generateRsaKeyPair(3072);
    rootCertPem = buildRootCa({ keys: rootKeys, cn: `${org} Root CA`, org, days: 20 * 365 });
    const issuingKeys = generateRsaKeyPair(3072);
    issuingCertPem = buildIssuingCa({
      keys: issuingKeys,
      cn: `${org} Device Issuing CA`,
      org,
      days: 10 * 365,
      root: { certPem: rootCertPem, privateKeyPem: rootKeys.privateKeyPem },
    });
    issuingKeyEnc = encryptPrivateKey(issuingKeys.privateKeyPem, passphrase);
    await write(f('root.key'), encryptPrivateKey(rootKeys.privateKeyPem, passphrase));
    await write(f('issuing.key'), issuingKeyEnc);
    await write(f('issuing.crt'), issuingCertPem);
    await write(f('root.crt'), rootCertPem);
  }
  if (!issuingCertPem || !issuingKeyEnc)
    throw new Error(`${o.dir} is missing issuing.crt or issuing.key`);
  let issuingKey: string;
  try {
    issuingKey = decryptPrivateKey(issuingKeyEnc, passphrase);
  } catch {
    throw new Error(`cannot decrypt ${f('issuing.key')}: wrong PKI_PASSPHRASE?`);
  }
  const issuing = { certPem: issuingCertPem, privateKeyPem: issuingKey };

  let serverCertPem = await read(f('server.crt'));
  const serverKeyEnc = await read(f('server.key'));
  let serverKey = serverKeyEnc ? decryptPrivateKey(serverKeyEnc, passphrase) : undefined;
  if (!serverCertPem || !serverKey || serverCertNeedsRenewal(serverCertPem, o.serverNames)) {
    const keys = generateRsaKeyPair(2048);
    serverCertPem = buildServerCert({
      publicKeyPem: keys.publicKeyPem,
      names: o.serverNames,
      days: o.serverCertDays,
      issuer: issuing,
    });
    serverKey = keys.privateKeyPem;
    await write(f('server.key'), encryptPrivateKey(serverKey, passphrase));
    await write(f('server.crt'), serverCertPem);
    o.logger.info({ names: o.serverNames }, 'issued the server certificate');
  }
  const rootCrlPem = await ensureRootCrl(f, rootCertPem, passphrase);
  return {
    rootCertPem,
    rootCrlPem,
    issuing,
    server: { certPem: serverCertPem, privateKeyPem: serverKey },
    chainPem: `${issuingCertPem.trim()}\n${rootCertPem.trim()}\n`,
    caPems: [rootCertPem, issuingCertPem],
    keyPassphrase: passphrase,
  };
}

/** Re-signs the root CRL (valid a year) when it is missing or within 60 days of nextUpdate. */
async function ensureRootCrl(
  f: (name: string) => string,
  rootCertPem: string,
  passphrase: string,
): Promise<string | undefined> {
  const existing = await read(f('root.crl'));
  if (existing) {
    const der = Buffer.from(existing.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const nextUpdate = crlNextUpdate(der);
    if (nextUpdate && nextUpdate.getTime() - Date.now() > 60 * 86_400_000) return existing;
  }
  const rootKeyEnc = await read(f('root.key'));
  if (!rootKeyEnc) return existing;
  const now = new Date();
  const number = Math.floor(now.getTime() / 1000); // monotonic without state
  const pem = derToPem(
    buildCrl({
      issuer: { certPem: rootCertPem, privateKeyPem: decryptPrivateKey(rootKeyEnc, passphrase) },
      revoked: [],
      crlNumber: number,
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + 365 * 86_400_000),
    }),
    'X509 CRL',
  );
  await write(f('root.crl'), pem);
  return pem;
}

function crlNextUpdate(der: Buffer): Date | undefined {
  try {
    const tbs = forge.asn1.fromDer(der.toString('binary')).value[0] as forge.asn1.Asn1;
    const fields = tbs.value as forge.asn1.Asn1[];
    const next = fields[4];
    if (
      !next ||
      (next.type !== forge.asn1.Type.UTCTIME && next.type !== forge.asn1.Type.GENERALIZEDTIME)
    )
      return undefined;
    return next.type === forge.asn1.Type.UTCTIME
      ? forge.asn1.utcTimeToDate(next.value as string)
      : forge.asn1.generalizedTimeToDate(next.value as string);
  } catch {
    return undefined;
  }
}

/**
 * Production import of an existing CA: root certificate, issuing certificate and issuing key
 * (PEM; the key may be encrypted with `keyPassphrase`). The key is re-encrypted with our
 * passphrase. The root key stays with its owner.
 */
export async function importCa(
  o: CaStoreOptions & {
    rootCertPem: string;
    issuingCertPem: string;
    issuingKeyPem: string;
    rootCrlPem?: string;
    keyPassphrase?: string;
  },
): Promise<void> {
  await fs.mkdir(o.dir, { recursive: true, mode: mode.dir });
  if (existsSync(path.join(o.dir, 'issuing.crt')))
    throw new Error(`${o.dir} already holds a CA; move it away first`);
  const root = forge.pki.certificateFromPem(o.rootCertPem);
  const issuing = forge.pki.certificateFromPem(o.issuingCertPem);
  let signed = false;
  try {
    signed = root.verify(issuing);
  } catch {
    signed = false; // forge throws on a signature made with another key
  }
  if (!signed) throw new Error('the issuing certificate is not signed by the root certificate');
  const key = o.keyPassphrase
    ? decryptPrivateKey(o.issuingKeyPem, o.keyPassphrase)
    : decryptPrivateKey(o.issuingKeyPem, '');
  const pub = forge.pki.publicKeyToPem(issuing.publicKey);
  const priv = forge.pki.privateKeyFromPem(key);
  const derived = forge.pki.publicKeyToPem(forge.pki.setRsaPublicKey(priv.n, priv.e));
  if (pub !== derived)
    throw new Error('the issuing key does not belong to the issuing certificate');
  const passphrase = await resolvePassphrase(o);
  await write(path.join(o.dir, 'root.crt'), o.rootCertPem);
  await write(path.join(o.dir, 'issuing.crt'), o.issuingCertPem);
  await write(path.join(o.dir, 'issuing.key'), encryptPrivateKey(key, passphrase));
  if (o.rootCrlPem) await write(path.join(o.dir, 'root.crl'), o.rootCrlPem);
}
