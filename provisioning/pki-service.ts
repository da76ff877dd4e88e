import { createHash, createPublicKey, randomBytes, X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import type { AuditActor, AuditLog } from '../audit/index.ts';
import type { ConnectionIdentity } from '../broker/identity-fns.ts';
import type { DeviceSession } from '../broker/types.ts';
import type { Config } from '../config/index.ts';
import type { Db } from '../db/client.ts';
import type { DbExecutor } from '../db/scoped.ts';
import type { CertificateRow } from '../db/schema/index.ts';
import { notifyDeviceEvent } from '../devices/device-events.ts';
import type { LoadedCa } from './ca-store.ts';
import { checkCsr, type CheckedCsr } from './csr-fns.ts';
import { PkiErrors, revocationReasons, type RevocationReason } from './pki-errors.ts';
import { pkiRepo } from './pki-repo.ts';
import {
  buildCrl,
  buildDeviceCert,
  derToPem,
  fingerprintSha256,
  generateRsaKeyPair,
  randomSerialHex,
} from './x509-fns.ts';

export interface IssuedCertificate {
  deviceId: string;
  serial: string;
  certificate: string;
  /** Issuing CA then root: send it with the device certificate and use it to verify the server. */
  chain: string;
  ca: string;
  notAfter: string;
  brokerUrl: string;
  /** Earlier certificates of the device this one superseded (revoked at once; enrolment only). */
  superseded?: string[];
}

const hashToken = (token: string): Buffer => createHash('sha256').update(token).digest();

export function createPki(deps: {
  db: Db;
  ca: LoadedCa;
  audit: AuditLog;
  config: Config['pki'];
  brokerUrl: string;
  crlUrl?: string;
  now?: () => Date;
}) {
  const { db, ca, audit, config } = deps;
  const now = deps.now ?? (() => new Date());
  let crlCache: { der: Buffer; pem: string; number: number; builtAt: number } | undefined;

  async function issue(
    tx: DbExecutor,
    deviceId: string,
    key: CheckedCsr,
    actor: AuditActor,
    action: string,
    extra: Record<string, unknown> = {},
  ): Promise<IssuedCertificate> {
    const device = await pkiRepo.lockDevice(tx, deviceId);
    if (!device) throw new PkiErrors.DeviceNotEnrollable(deviceId, 'unknown');
    if (device.status === 'suspended' || device.status === 'retired')
      throw new PkiErrors.DeviceNotEnrollable(deviceId, device.status);
    const serial = randomSerialHex().replace(/^0+/, '');
    const pem = buildDeviceCert({
      publicKey: key.publicKey,
      deviceId,
      days: config.deviceCertDays,
      issuer: ca.issuing,
      serialHex: serial,
      now: now(),
      ...(deps.crlUrl ? { crlUrl: deps.crlUrl } : {}),
    });
    const cert = new X509Certificate(pem);
    const row = await pkiRepo.insertCertificate(tx, {
      serial,
      deviceId,
      fingerprintSha256: fingerprintSha256(pem),
      notBefore: new Date(cert.validFrom),
      notAfter: new Date(cert.validTo),
      issuedBy: actor.actorId,
      pem,
    });
    await audit.record(
      {
        ...actor,
        action,
        targetType: 'certificate',
        targetId: serial,
        after: {
          deviceId,
          serial,
          keyAlgorithm: key.keyAlgorithm,
          fingerprintSha256: row.fingerprintSha256,
          notAfter: row.notAfter,
          ...extra,
        },
      },
      tx,
    );
    return {
      deviceId,
      serial,
      certificate: pem,
      chain: ca.chainPem,
      ca: ca.rootCertPem,
      notAfter: row.notAfter.toISOString(),
      brokerUrl: deps.brokerUrl,
    };
  }

  async function revokeIn(
    tx: DbExecutor,
    serial: string,
    reason: RevocationReason,
    actor: AuditActor,
    extra: Record<string, unknown> = {},
  ): Promise<CertificateRow> {
    const before = await pkiRepo.lockCertificate(tx, serial);
    if (!before) throw new PkiErrors.CertificateNotFound(serial);
    if (before.status === 'revoked') throw new PkiErrors.AlreadyRevoked(serial);
    const after = await pkiRepo.revokeCertificate(tx, serial, now(), revocationReasons[reason]);
    await audit.record(
      {
        ...actor,
        action: 'certificate.revoke',
        targetType: 'certificate',
        targetId: serial,
        before: { status: before.status },
        after: { status: 'revoked', reason, deviceId: before.deviceId, ...extra },
      },
      tx,
    );
    await notifyDeviceEvent(tx, { type: 'certificate_revoked', serial, deviceId: before.deviceId });
    return after;
  }

  /**
   * Enrolment supersedes (docs/security-model.md, "Certificates"): every other certificate of the
   * device that is still active is revoked at once, reason superseded (RFC 5280 §5.3.1), in the
   * transaction that issues the new one. Unlike renewal there is no overlap: the new certificate
   * goes straight back to whoever enrols, and re-enrolment means the old key is lost, reflashed
   * away or no longer trusted, so nothing needs it and nobody should still hold it.
   */
  async function issueSuperseding(
    tx: DbExecutor,
    deviceId: string,
    key: CheckedCsr,
    actor: AuditActor,
    action: string,
    extra: Record<string, unknown> = {},
  ): Promise<IssuedCertificate> {
    const issued = await issue(tx, deviceId, key, actor, action, extra);
    const earlier = await pkiRepo.activeSerialsExcept(tx, deviceId, issued.serial);
    for (const { serial } of earlier)
      await revokeIn(tx, serial, 'superseded', actor, { supersededBy: issued.serial, by: action });
    return { ...issued, superseded: earlier.map((e) => e.serial) };
  }

  async function buildCurrentCrl(): Promise<NonNullable<typeof crlCache>> {
    const at = now();
    // An expired certificate no longer needs to be listed (RFC 5280 §3.3).
    const revoked = await pkiRepo.revokedUnexpired(db, at);
    const crlNumber = await pkiRepo.nextCrlNumber(db);
    const der = buildCrl({
      issuer: ca.issuing,
      revoked: revoked.map((r) => ({
        serialHex: r.serial,
        revokedAt: r.revokedAt!,
        reasonCode: r.reason ?? 0,
      })),
      crlNumber,
      thisUpdate: at,
      nextUpdate: new Date(at.getTime() + 7 * 86_400_000),
    });
    crlCache = { der, pem: derToPem(der, 'X509 CRL'), number: crlNumber, builtAt: at.getTime() };
    return crlCache;
  }

  async function crl(): Promise<NonNullable<typeof crlCache>> {
    // Re-signed daily even without revocations, well before nextUpdate.
    if (!crlCache || now().getTime() - crlCache.builtAt > 86_400_000) return buildCurrentCrl();
    return crlCache;
  }

  return {
    async createEnrolmentToken(
      deviceId: string,
      actor: AuditActor,
    ): Promise<{ token: string; deviceId: string; expiresAt: string }> {
      const token = `enr_${randomBytes(32).toString('base64url')}`; // 256 bits
      const expiresAt = new Date(now().getTime() + config.enrolmentTokenHours * 3_600_000);
      await db.transaction(async (tx) => {
        const device = await pkiRepo.device(tx, deviceId);
        if (!device) throw new PkiErrors.DeviceNotEnrollable(deviceId, 'unknown');
        if (device.status === 'suspended' || device.status === 'retired')
          throw new PkiErrors.DeviceNotEnrollable(deviceId, device.status);
        const tokenId = await pkiRepo.insertEnrolmentToken(tx, {
          deviceId,
          tokenHash: hashToken(token),
          expiresAt,
        });
        await audit.record(
          {
            ...actor,
            action: 'enrolment_token.create',
            targetType: 'device',
            targetId: deviceId,
            after: { tokenId, expiresAt },
          },
          tx,
        );
      });
      return { token, deviceId, expiresAt: expiresAt.toISOString() };
    },

    /** POST /enroll: the token alone authenticates; it is spent only by a successful issuance. */
    async enroll(
      input: { token: string; csr: string },
      actor: Omit<AuditActor, 'actorId' | 'actorRole'>,
    ): Promise<IssuedCertificate> {
      return db.transaction(async (tx) => {
        const token = await pkiRepo.lockEnrolmentToken(tx, hashToken(input.token));
        if (!token || token.usedAt || token.expiresAt.getTime() <= now().getTime())
          throw new PkiErrors.TokenInvalid();
        const publicKey = checkCsr(input.csr, token.deviceId);
        const issued = await issueSuperseding(
          tx,
          token.deviceId,
          publicKey,
          { ...actor, actorId: `enrolment:${token.id}`, actorRole: 'device' },
          'certificate.enrol',
          { tokenId: token.id },
        );
        await pkiRepo.spendEnrolmentToken(tx, token.id, now(), issued.serial);
        return issued;
      });
    },

    /** A technician signs a CSR for a device directly (`thamani cert issue --csr`). */
    issueFromCsr(deviceId: string, csrPem: string, actor: AuditActor): Promise<IssuedCertificate> {
      const publicKey = checkCsr(csrPem, deviceId);
      return db.transaction((tx) =>
        issueSuperseding(tx, deviceId, publicKey, actor, 'certificate.issue'),
      );
    },

    /**
     * For devices that cannot make a CSR: a key pair made here, returned once as PEM and as a
     * password-protected PKCS#12, never stored.
     */
    async issueKeyPair(
      deviceId: string,
      password: string,
      actor: AuditActor,
    ): Promise<IssuedCertificate & { privateKey: string; pkcs12: string }> {
      if (password.length < 12) throw new PkiErrors.PasswordTooShort();
      const keys = generateRsaKeyPair(2048);
      const issued = await db.transaction((tx) =>
        issueSuperseding(
          tx,
          deviceId,
          { publicKey: createPublicKey(keys.publicKeyPem), keyAlgorithm: 'rsa-2048' },
          actor,
          'certificate.issue_keypair',
        ),
      );
      const p12 = forge.pkcs12.toPkcs12Asn1(
        forge.pki.privateKeyFromPem(keys.privateKeyPem),
        [
          forge.pki.certificateFromPem(issued.certificate),
          ...issued.chain
            .split(/(?<=-----END CERTIFICATE-----)\s*/)
            .filter((p) => p.includes('BEGIN'))
            .map((p) => forge.pki.certificateFromPem(p)),
        ],
        password,
        { algorithm: 'aes256', friendlyName: deviceId },
      );
      return {
        ...issued,
        privateKey: keys.privateKeyPem,
        pkcs12: Buffer.from(forge.asn1.toDer(p12).getBytes(), 'binary').toString('base64'),
      };
    },

    /** Takes effect at once: live sessions are cut (NOTIFY), the CRL is re-issued before returning. */
    async revoke(
      serial: string,
      reason: string,
      actor: AuditActor,
    ): Promise<{ certificate: CertificateRow; crlNumber: number }> {
      if (!Object.hasOwn(revocationReasons, reason))
        throw new PkiErrors.InvalidReason(JSON.stringify(reason));
      const certificate = await db.transaction((tx) =>
        revokeIn(tx, serial.toLowerCase(), reason as RevocationReason, actor),
      );
      const rebuilt = await buildCurrentCrl();
      return { certificate, crlNumber: rebuilt.number };
    },

    crl,
    /** Another process revoked something: the next crl() call re-reads the registry. */
    invalidateCrl(): void {
      crlCache = undefined;
    },

    async connectionIdentity(serial: string): Promise<ConnectionIdentity | undefined> {
      return pkiRepo.connectionIdentity(db, serial);
    },

    /** Many serials in one query (a revalidation sweep, CONNECTs gathered in a storm): the serials found. */
    async connectionIdentities(serials: string[]): Promise<Map<string, ConnectionIdentity>> {
      return pkiRepo.connectionIdentities(db, serials);
    },

    async markConnected(deviceId: string): Promise<void> {
      await db.transaction(async (tx) => {
        if (await pkiRepo.activatePending(tx, deviceId, now()))
          await audit.record(
            {
              actorId: `device:${deviceId}`,
              actorRole: 'device',
              action: 'device.status',
              targetType: 'device',
              targetId: deviceId,
              before: { status: 'pending' },
              after: { status: 'active', why: 'first connection' },
            },
            tx,
          );
      });
    },

    listCertificates(
      filter: { deviceId?: string; expiringWithinDays?: number } = {},
    ): Promise<Omit<CertificateRow, 'pem'>[]> {
      return pkiRepo.certificates(db, {
        deviceId: filter.deviceId,
        activeNotAfterBy:
          filter.expiringWithinDays !== undefined
            ? new Date(now().getTime() + filter.expiringWithinDays * 86_400_000)
            : undefined,
      });
    },

    async requestRotation(deviceId: string, actor: AuditActor): Promise<void> {
      await db.transaction(async (tx) => {
        if (!(await pkiRepo.setRotationRequested(tx, deviceId, true, now())))
          throw new PkiErrors.DeviceNotEnrollable(deviceId, 'unknown');
        await audit.record(
          {
            ...actor,
            action: 'certificate.rotation_requested',
            targetType: 'device',
            targetId: deviceId,
            after: { rotationRequested: true },
          },
          tx,
        );
      });
    },

    /**
     * Renewal over the device's own mTLS session (topic cert/csr). Allowed inside the renewal
     * window or after a technician asked for rotation. The old certificate stays valid for the
     * overlap, then retireSuperseded() revokes it (reason superseded).
     */
    async renew(session: DeviceSession, csrPem: string): Promise<IssuedCertificate> {
      const publicKey = checkCsr(csrPem, session.deviceId);
      return db.transaction(async (tx) => {
        const current = await pkiRepo.lockCertificate(tx, session.certSerial);
        const device = await pkiRepo.device(tx, session.deviceId);
        if (!current || !device) throw new PkiErrors.CertificateNotFound(session.certSerial);
        const windowOpens = current.notAfter.getTime() - config.renewalWindowDays * 86_400_000;
        if (!device.rotationRequested && now().getTime() < windowOpens)
          throw new PkiErrors.RenewalNotAllowed(
            config.renewalWindowDays,
            current.notAfter.toISOString(),
          );
        const actor = {
          actorId: `device:${session.deviceId}`,
          actorRole: 'device',
          ip: session.remoteAddress ?? null,
        };
        const issued = await issue(tx, session.deviceId, publicKey, actor, 'certificate.renew', {
          replaces: current.serial,
        });
        const retireAfter = new Date(now().getTime() + config.rotationOverlapHours * 3_600_000);
        await pkiRepo.markReplaced(tx, current.serial, issued.serial, retireAfter);
        await pkiRepo.setRotationRequested(tx, session.deviceId, false);
        return issued;
      });
    },

    /** Revokes (superseded) every replaced certificate whose overlap has ended. */
    async retireSuperseded(): Promise<string[]> {
      const due = await pkiRepo.dueForRetirement(db, now());
      for (const { serial } of due) {
        await db.transaction((tx) =>
          revokeIn(tx, serial, 'superseded', { actorId: 'system:rotation', actorRole: 'system' }),
        );
      }
      if (due.length > 0) await buildCurrentCrl();
      return due.map((d) => d.serial);
    },
  };
}

export type Pki = ReturnType<typeof createPki>;
