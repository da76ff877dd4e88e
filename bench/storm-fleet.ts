import {
  constants,
  createHash,
  createPublicKey,
  generateKeyPair,
  privateEncrypt,
} from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import type pg from 'pg';
import type { Logger } from 'pino';
import { loadOrCreateCa, type LoadedCa } from '../provisioning/index.ts';
import { serialHexFromBytes } from '../provisioning/serial-fns.ts';

/**
 * The storm bench's fleet: N devices, each with its own certificate (own serial, own CN, own
 * fingerprint) from a CA kept in node_modules/.cache, so that a second run of the bench spends
 * no time on keys. Making 5,000 RSA keys takes ~15 min on this machine under load, and forge
 * signs ~10 certificates/s with the 3072-bit issuing key, so:
 *
 * - key pairs are a pool of `keys` (default 250) that devices share round-robin: the handshake
 *   costs the same (the gateway verifies one RSA-2048 CertificateVerify per handshake, whoever's);
 * - certificates are built with forge (the device profile of provisioning/x509-fns.ts) but
 *   signed with node:crypto (PKCS#1 v1.5 over the DigestInfo, what forge would compute).
 *
 * The certificate rows are inserted straight into `certificates` (the bench is about the
 * gateway, not enrolment: that is issue 21 §1's bench).
 */
export interface StormDevice {
  id: string;
  key: string;
  cert: string;
  serial: string;
  fingerprint: string;
  notBefore: string;
  notAfter: string;
}

const generate = promisify(generateKeyPair);
/** DER prefix of a SHA-256 DigestInfo (RFC 8017 §9.2, note 1). */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

export async function loadStormFleet(o: {
  root: string;
  devices: number;
  keys: number;
  logger: Logger;
}): Promise<{ ca: LoadedCa; devices: StormDevice[] }> {
  const dir = path.join(o.root, 'node_modules', '.cache', 'thamani-storm', 'rsa');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = await loadOrCreateCa({
    dir: path.join(dir, 'pki'),
    passphrase: 'storm bench passphrase 1234',
    serverNames: ['localhost', '127.0.0.1'],
    serverCertDays: 365,
    logger: o.logger,
  });
  const keysFile = path.join(dir, 'keys.json');
  const keys: string[] = existsSync(keysFile)
    ? (JSON.parse(readFileSync(keysFile, 'utf8')) as string[])
    : [];
  if (keys.length < o.keys) {
    process.stdout.write(
      `storm fleet: making ${o.keys - keys.length} RSA-2048 key pairs (cached in ${keysFile})\n`,
    );
    while (keys.length < o.keys) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(8, o.keys - keys.length) }, () =>
          generate('rsa', { modulusLength: 2048 }),
        ),
      );
      for (const k of batch)
        keys.push(k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    }
    writeFileSync(keysFile, JSON.stringify(keys), { mode: 0o600 });
  }
  const fleetFile = path.join(dir, 'fleet.json');
  const cached: StormDevice[] = existsSync(fleetFile)
    ? (JSON.parse(readFileSync(fleetFile, 'utf8')) as StormDevice[])
    : [];
  // Certificates that expire within a day (or were made against another CA) are made again.
  // Made positive and minimal the product's way (0x40..0x7f first): a prefix from the hash alone
  // was negative whenever its first digit was 8-f, and the gateway refused every such device.
  const caPrefix = serialHexFromBytes(
    createHash('sha256').update(ca.issuing.certPem).digest().subarray(0, 2),
  );
  const fresh = cached.filter(
    (d, i) =>
      d.id === deviceId(i) &&
      new Date(d.notAfter).getTime() > Date.now() + 86_400_000 &&
      d.serial.startsWith(caPrefix),
  );
  const devices = fresh.slice(0, o.devices);
  if (devices.length < o.devices) {
    process.stdout.write(
      `storm fleet: issuing ${o.devices - devices.length} device certificates (cached in ${fleetFile})\n`,
    );
    const issuer = forge.pki.certificateFromPem(ca.issuing.certPem);
    const aki = issuer.generateSubjectKeyIdentifier().getBytes();
    const publicKeys = keys.map((k) => forge.pki.publicKeyFromPem(publicPemOf(k)));
    for (let i = devices.length; i < o.devices; i++) {
      const keyIndex = i % o.keys;
      const id = deviceId(i);
      // Serial: 4 hex digits naming the CA, then random; positive, no leading zero (RFC 5280 §4.1.2.2).
      const serial = `${caPrefix}${forge.util.bytesToHex(forge.random.getBytesSync(12))}`;
      const now = Date.now();
      const cert = forge.pki.createCertificate();
      cert.publicKey = publicKeys[keyIndex]!;
      // eslint-disable-next-line no-restricted-syntax -- made above: hex, positive, 16 octets
      cert.serialNumber = serial;
      cert.validity.notBefore = new Date(now - 5 * 60_000);
      cert.validity.notAfter = new Date(now + 365 * 86_400_000);
      cert.setSubject([{ name: 'commonName', value: id }]);
      cert.setIssuer(issuer.subject.attributes);
      cert.setExtensions([
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, critical: true },
        { name: 'extKeyUsage', clientAuth: true },
        { name: 'subjectKeyIdentifier' },
        { name: 'authorityKeyIdentifier', keyIdentifier: aki },
      ]);
      const signer = {
        sign: (md: forge.md.MessageDigest): string =>
          privateEncrypt(
            { key: ca.issuing.privateKeyPem, padding: constants.RSA_PKCS1_PADDING },
            Buffer.concat([SHA256_DIGEST_INFO, Buffer.from(md.digest().getBytes(), 'binary')]),
          ).toString('binary'),
      };
      cert.sign(signer as unknown as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
      const pem = forge.pki.certificateToPem(cert);
      const der = Buffer.from(
        forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(),
        'binary',
      );
      devices.push({
        id,
        key: keys[keyIndex]!,
        cert: pem,
        serial,
        fingerprint: createHash('sha256').update(der).digest('hex'),
        notBefore: cert.validity.notBefore.toISOString(),
        notAfter: cert.validity.notAfter.toISOString(),
      });
    }
    const keep = [...devices, ...fresh.slice(devices.length)];
    writeFileSync(fleetFile, JSON.stringify(keep), { mode: 0o600 });
  }
  return { ca, devices };
}

export const deviceId = (i: number): string => `st-${i}`;

function publicPemOf(privatePem: string): string {
  return createPublicKey(privatePem).export({ type: 'spki', format: 'pem' }).toString();
}

/** The fleet's registry rows: devices (active) under one unit, and their certificates. */
export async function insertStormFleet(
  pool: pg.Pool,
  unitId: string,
  devices: StormDevice[],
): Promise<void> {
  for (let from = 0; from < devices.length; from += 1000) {
    const chunk = devices.slice(from, from + 1000);
    await pool.query(
      `INSERT INTO devices (id, unit_id, kind, status) SELECT id, $2::uuid, 'biodigester', 'active' FROM unnest($1::text[]) AS id`,
      [chunk.map((d) => d.id), unitId],
    );
    await pool.query(
      `INSERT INTO certificates (serial, device_id, fingerprint_sha256, not_before, not_after, issued_by, pem)
       SELECT * , 'bench', '' FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])`,
      [
        chunk.map((d) => d.serial),
        chunk.map((d) => d.id),
        chunk.map((d) => d.fingerprint),
        chunk.map((d) => d.notBefore),
        chunk.map((d) => d.notAfter),
      ],
    );
  }
}
