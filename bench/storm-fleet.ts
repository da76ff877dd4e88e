import {
  createHash,
  createPublicKey,
  generateKeyPair,
  randomBytes,
  X509Certificate,
} from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import type { Logger } from 'pino';
import { loadOrCreateCa, type LoadedCa } from '../provisioning/index.ts';
import { serialHexFromBytes } from '../provisioning/serial-fns.ts';
import { buildDeviceCert, fingerprintSha256 } from '../provisioning/x509-fns.ts';
import type { DeviceKeyType } from '../simulators/key-types.ts';

/**
 * The storm bench's fleet: N devices, each with its own certificate (own serial, own CN, own
 * fingerprint) from a CA kept in node_modules/.cache/thamani-storm/<key type>/, so that a second
 * run of the bench spends no time on keys. Certificates are made by the product's own code
 * (provisioning/x509-fns.ts `buildDeviceCert`: the device profile, signed by the issuing CA with
 * node:crypto), for an RSA-2048 or an ECDSA P-256 device key (ADR 0002); only the enrolment
 * round trip (CSR, token, API) is skipped: that is `npm run bench -- enrol`.
 *
 * - RSA: making 5,000 RSA keys takes ~15 min on this machine under load, so key pairs are a pool
 *   of `keys` (default 250) that devices share round-robin: the handshake costs the same (the
 *   gateway verifies one RSA-2048 CertificateVerify per handshake, whoever's).
 * - EC: a P-256 key costs ~1 ms, so every device has its own unless `keys` says otherwise.
 *
 * The certificate rows are inserted straight into `certificates`.
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
/** Bumped when the way certificates are made changes: a cache of another profile is made again. */
const PROFILE = 'buildDeviceCert-1';

export async function loadStormFleet(o: {
  root: string;
  devices: number;
  keyType: DeviceKeyType;
  /** Key pairs shared round-robin (default: RSA 250, EC one per device). */
  keys?: number;
  logger: Logger;
}): Promise<{ ca: LoadedCa; devices: StormDevice[] }> {
  const poolSize = Math.min(o.devices, o.keys ?? (o.keyType === 'rsa' ? 250 : o.devices));
  const dir = path.join(o.root, 'node_modules', '.cache', 'thamani-storm', o.keyType);
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
  if (keys.length < poolSize) {
    process.stdout.write(
      `storm fleet: making ${poolSize - keys.length} ${o.keyType === 'rsa' ? 'RSA-2048' : 'P-256'} key pairs (cached in ${keysFile})\n`,
    );
    while (keys.length < poolSize) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(8, poolSize - keys.length) }, () =>
          o.keyType === 'rsa'
            ? generate('rsa', { modulusLength: 2048 })
            : generate('ec', { namedCurve: 'P-256' }),
        ),
      );
      for (const k of batch)
        keys.push(k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    }
    writeFileSync(keysFile, JSON.stringify(keys), { mode: 0o600 });
  }
  const fleetFile = path.join(dir, 'fleet.json');
  const stored = existsSync(fleetFile)
    ? (JSON.parse(readFileSync(fleetFile, 'utf8')) as { profile?: string; devices?: StormDevice[] })
    : {};
  const cached = stored.profile === PROFILE ? (stored.devices ?? []) : [];
  // Certificates that expire within a day (or were made against another CA) are made again.
  // Made positive and minimal the product's way (0x40..0x7f first): a prefix from the hash alone
  // was negative whenever its first digit was 8-f, and the gateway refused every such device.
  const caPrefix = serialHexFromBytes(
    createHash('sha256').update(ca.issuing.certPem).digest().subarray(0, 2),
  );
  const fresh = cached.filter(
    (d, i) =>
      d.id === deviceId(i) &&
      d.key === keys[i % poolSize] &&
      new Date(d.notAfter).getTime() > Date.now() + 86_400_000 &&
      d.serial.startsWith(caPrefix),
  );
  const devices = fresh.slice(0, o.devices);
  if (devices.length < o.devices) {
    process.stdout.write(
      `storm fleet: issuing ${o.devices - devices.length} device certificates (cached in ${fleetFile})\n`,
    );
    const publicKeys = keys.slice(0, poolSize).map((k) => createPublicKey(k));
    for (let i = devices.length; i < o.devices; i++) {
      const keyIndex = i % poolSize;
      const id = deviceId(i);
      // Serial: 4 hex digits naming the CA, then random; positive, no leading zero (RFC 5280 §4.1.2.2).
      const serial = `${caPrefix}${randomBytes(12).toString('hex')}`;
      const cert = buildDeviceCert({
        publicKey: publicKeys[keyIndex]!,
        deviceId: id,
        days: 365,
        issuer: ca.issuing,
        serialHex: serial,
      });
      const x = new X509Certificate(cert);
      devices.push({
        id,
        key: keys[keyIndex]!,
        cert,
        serial,
        fingerprint: fingerprintSha256(cert),
        notBefore: new Date(x.validFrom).toISOString(),
        notAfter: new Date(x.validTo).toISOString(),
      });
    }
    const keep = [...devices, ...fresh.slice(devices.length)];
    writeFileSync(fleetFile, JSON.stringify({ profile: PROFILE, devices: keep }), { mode: 0o600 });
  }
  return { ca, devices };
}

export const deviceId = (i: number): string => `st-${i}`;

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
