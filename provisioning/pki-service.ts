import { createHash, randomBytes } from 'node:crypto';
import { and, asc, eq, getTableColumns, gt, isNull, lte, ne, sql } from 'drizzle-orm';
import forge from 'node-forge';
import type { AuditActor, AuditLog } from '../audit/index.ts';
import type { ConnectionIdentity } from '../broker/identity-fns.ts';
import type { DeviceSession } from '../broker/types.ts';
import type { Config } from '../config/index.ts';
import type { Db } from '../db/client.ts';
import type { DbExecutor } from '../db/scoped.ts';
import { certificates, devices, enrolmentTokens, pkiState, type CertificateRow } from '../db/schema/index.ts';
import { notifyDeviceEvent } from '../devices/device-events.ts';
import type { LoadedCa } from './ca-store.ts';
import { checkCsr } from './csr-fns.ts';
import { PkiErrors, revocationReasons, type RevocationReason } from './pki-errors.ts';
import { buildCrl, buildDeviceCert, derToPem, fingerprintSha256, generateRsaKeyPair, randomSerialHex } from './x509-fns.ts';

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

export function createPki(deps: { db: Db; ca: LoadedCa; audit: AuditLog; config: Config['pki']; brokerUrl: string; crlUrl?: string; now?: () => Date }) {
  const { db, ca, audit, config } = deps;
  const now = deps.now ?? (() => new Date());
  let crlCache: { der: Buffer; pem: string; number: number; builtAt: number } | undefined;

  async function issue(tx: DbExecutor, deviceId: string, publicKey: forge.pki.PublicKey, actor: AuditActor, action: string, extra: Record<string, unknown> = {}): Promise<IssuedCertificate> {
    const [device] = await tx.select().from(devices).where(eq(devices.id, deviceId)).for('update');
    if (!device) throw new PkiErrors.DeviceNotEnrollable(deviceId, 'unknown');
    if (device.status === 'suspended' || device.status === 'retired') throw new PkiErrors.DeviceNotEnrollable(deviceId, device.status);
    const serial = randomSerialHex().replace(/^0+/, '');
    const pem = buildDeviceCert({ publicKey, deviceId, days: config.deviceCertDays, issuer: ca.issuing, serialHex: serial, now: now(), ...(deps.crlUrl ? { crlUrl: deps.crlUrl } : {}) });
    const cert = forge.pki.certificateFromPem(pem);
    const [row] = await tx
      .insert(certificates)
      .values({ serial, deviceId, fingerprintSha256: fingerprintSha256(pem), notBefore: cert.validity.notBefore, notAfter: cert.validity.notAfter, issuedBy: actor.actorId, pem })
      .returning();
    await audit.record({ ...actor, action, targetType: 'certificate', targetId: serial, after: { deviceId, serial, fingerprintSha256: row!.fingerprintSha256, notAfter: row!.notAfter, ...extra } }, tx);
    return { deviceId, serial, certificate: pem, chain: ca.chainPem, ca: ca.rootCertPem, notAfter: row!.notAfter.toISOString(), brokerUrl: deps.brokerUrl };
  }

  async function revokeIn(tx: DbExecutor, serial: string, reason: RevocationReason, actor: AuditActor, extra: Record<string, unknown> = {}): Promise<CertificateRow> {
    const [before] = await tx.select().from(certificates).where(eq(certificates.serial, serial)).for('update');
    if (!before) throw new PkiErrors.CertificateNotFound(serial);
    if (before.status === 'revoked') throw new PkiErrors.AlreadyRevoked(serial);
    const [after] = await tx
      .update(certificates)
      .set({ status: 'revoked', revokedAt: now(), revocationReason: revocationReasons[reason] })
      .where(eq(certificates.serial, serial))
      .returning();
    await audit.record({ ...actor, action: 'certificate.revoke', targetType: 'certificate', targetId: serial, before: { status: before.status }, after: { status: 'revoked', reason, deviceId: before.deviceId, ...extra } }, tx);
    await notifyDeviceEvent(tx, { type: 'certificate_revoked', serial, deviceId: before.deviceId });
    return after!;
  }

  /**
   * Enrolment supersedes (docs/security-model.md, "Certificates"): every other certificate of the
   * device that is still active is revoked at once, reason superseded (RFC 5280 §5.3.1), in the
   * transaction that issues the new one. Unlike renewal there is no overlap: the new certificate
   * goes straight back to whoever enrols, and re-enrolment means the old key is lost, reflashed
   * away or no longer trusted, so nothing needs it and nobody should still hold it.
   */
  async function issueSuperseding(tx: DbExecutor, deviceId: string, publicKey: forge.pki.PublicKey, actor: AuditActor, action: string, extra: Record<string, unknown> = {}): Promise<IssuedCertificate> {
    const issued = await issue(tx, deviceId, publicKey, actor, action, extra);
    const earlier = await tx
      .select({ serial: certificates.serial })
      .from(certificates)
      .where(and(eq(certificates.deviceId, deviceId), eq(certificates.status, 'active'), ne(certificates.serial, issued.serial)));
    for (const { serial } of earlier) await revokeIn(tx, serial, 'superseded', actor, { supersededBy: issued.serial, by: action });
    return { ...issued, superseded: earlier.map((e) => e.serial) };
  }

  async function buildCurrentCrl(): Promise<NonNullable<typeof crlCache>> {
    const at = now();
    const revoked = await db
      .select({ serial: certificates.serial, revokedAt: certificates.revokedAt, reason: certificates.revocationReason })
      .from(certificates)
      // An expired certificate no longer needs to be listed (RFC 5280 §3.3).
      .where(and(eq(certificates.status, 'revoked'), gt(certificates.notAfter, at)))
      .orderBy(asc(certificates.revokedAt));
    const [state] = await db
      .insert(pkiState)
      .values({ id: 1, crlNumber: 1 })
      .onConflictDoUpdate({ target: pkiState.id, set: { crlNumber: sql`${pkiState.crlNumber} + 1` } })
      .returning();
    const der = buildCrl({
      issuer: ca.issuing,
      revoked: revoked.map((r) => ({ serialHex: r.serial, revokedAt: r.revokedAt!, reasonCode: r.reason ?? 0 })),
      crlNumber: state!.crlNumber,
      thisUpdate: at,
      nextUpdate: new Date(at.getTime() + 7 * 86_400_000),
    });
    crlCache = { der, pem: derToPem(der, 'X509 CRL'), number: state!.crlNumber, builtAt: at.getTime() };
    return crlCache;
  }

  async function crl(): Promise<NonNullable<typeof crlCache>> {
    // Re-signed daily even without revocations, well before nextUpdate.
    if (!crlCache || now().getTime() - crlCache.builtAt > 86_400_000) return buildCurrentCrl();
    return crlCache;
  }

  return {
    async createEnrolmentToken(deviceId: string, actor: AuditActor): Promise<{ token: string; deviceId: string; expiresAt: string }> {
      const token = `enr_${randomBytes(32).toString('base64url')}`; // 256 bits
      const expiresAt = new Date(now().getTime() + config.enrolmentTokenHours * 3_600_000);
      await db.transaction(async (tx) => {
        const [device] = await tx.select().from(devices).where(eq(devices.id, deviceId));
        if (!device) throw new PkiErrors.DeviceNotEnrollable(deviceId, 'unknown');
        if (device.status === 'suspended' || device.status === 'retired') throw new PkiErrors.DeviceNotEnrollable(deviceId, device.status);
        const [row] = await tx.insert(enrolmentTokens).values({ deviceId, tokenHash: hashToken(token), expiresAt, createdBy: actor.actorId }).returning({ id: enrolmentTokens.id });
        await audit.record({ ...actor, action: 'enrolment_token.create', targetType: 'device', targetId: deviceId, after: { tokenId: row!.id, expiresAt } }, tx);
      });
      return { token, deviceId, expiresAt: expiresAt.toISOString() };
    },

    /** POST /enroll: the token alone authenticates; it is spent only by a successful issuance. */
    async enroll(input: { token: string; csr: string }, actor: Omit<AuditActor, 'actorId' | 'actorRole'>): Promise<IssuedCertificate> {
      return db.transaction(async (tx) => {
        const [token] = await tx.select().from(enrolmentTokens).where(eq(enrolmentTokens.tokenHash, hashToken(input.token))).for('update');
        if (!token || token.usedAt || token.expiresAt.getTime() <= now().getTime()) throw new PkiErrors.TokenInvalid();
        const publicKey = checkCsr(input.csr, token.deviceId);
        const issued = await issueSuperseding(tx, token.deviceId, publicKey, { ...actor, actorId: `enrolment:${token.id}`, actorRole: 'device' }, 'certificate.enrol', { tokenId: token.id });
        await tx.update(enrolmentTokens).set({ usedAt: now(), usedFor: issued.serial }).where(eq(enrolmentTokens.id, token.id));
        return issued;
      });
    },

    /** A technician signs a CSR for a device directly (`thamani cert issue --csr`). */
    issueFromCsr(deviceId: string, csrPem: string, actor: AuditActor): Promise<IssuedCertificate> {
      const publicKey = checkCsr(csrPem, deviceId);
      return db.transaction((tx) => issueSuperseding(tx, deviceId, publicKey, actor, 'certificate.issue'));
    },

    /**
     * For devices that cannot make a CSR: a key pair made here, returned once as PEM and as a
     * password-protected PKCS#12, never stored.
     */
    async issueKeyPair(deviceId: string, password: string, actor: AuditActor): Promise<IssuedCertificate & { privateKey: string; pkcs12: string }> {
      if (password.length < 12) throw new PkiErrors.PasswordTooShort();
      const keys = generateRsaKeyPair(2048);
      const issued = await db.transaction((tx) => issueSuperseding(tx, deviceId, forge.pki.publicKeyFromPem(keys.publicKeyPem), actor, 'certificate.issue_keypair'));
      const p12 = forge.pkcs12.toPkcs12Asn1(
        forge.pki.privateKeyFromPem(keys.privateKeyPem),
        [forge.pki.certificateFromPem(issued.certificate), ...issued.chain.split(/(?<=-----END CERTIFICATE-----)\s*/).filter((p) => p.includes('BEGIN')).map((p) => forge.pki.certificateFromPem(p))],
        password,
        { algorithm: 'aes256', friendlyName: deviceId },
      );
      return { ...issued, privateKey: keys.privateKeyPem, pkcs12: Buffer.from(forge.asn1.toDer(p12).getBytes(), 'binary').toString('base64') };
    },

    /** Takes effect at once: live sessions are cut (NOTIFY), the CRL is re-issued before returning. */
    async revoke(serial: string, reason: string, actor: AuditActor): Promise<{ certificate: CertificateRow; crlNumber: number }> {
      if (!Object.hasOwn(revocationReasons, reason)) throw new PkiErrors.InvalidReason(JSON.stringify(reason));
      const certificate = await db.transaction((tx) => revokeIn(tx, serial.toLowerCase(), reason as RevocationReason, actor));
      const rebuilt = await buildCurrentCrl();
      return { certificate, crlNumber: rebuilt.number };
    },

    crl,
    /** Another process revoked something: the next crl() call re-reads the registry. */
    invalidateCrl(): void {
      crlCache = undefined;
    },

    async connectionIdentity(serial: string): Promise<ConnectionIdentity | undefined> {
      const [row] = await db
        .select({ deviceId: devices.id, unitId: devices.unitId, kind: devices.kind, deviceStatus: devices.status, certStatus: certificates.status, notAfter: certificates.notAfter })
        .from(certificates)
        .innerJoin(devices, eq(devices.id, certificates.deviceId))
        .where(eq(certificates.serial, serial));
      return row;
    },

    /** Many serials in one query (a revalidation sweep, CONNECTs gathered in a storm): the serials found. */
    async connectionIdentities(serials: string[]): Promise<Map<string, ConnectionIdentity>> {
      if (serials.length === 0) return new Map();
      const rows = await db
        .select({ serial: certificates.serial, deviceId: devices.id, unitId: devices.unitId, kind: devices.kind, deviceStatus: devices.status, certStatus: certificates.status, notAfter: certificates.notAfter })
        .from(certificates)
        .innerJoin(devices, eq(devices.id, certificates.deviceId))
        .where(sql`${certificates.serial} = ANY(${sql.param(serials)}::text[])`);
      return new Map(rows.map(({ serial, ...identity }) => [serial, identity]));
    },

    async markConnected(deviceId: string): Promise<void> {
      await db.transaction(async (tx) => {
        const [updated] = await tx.update(devices).set({ status: 'active', updatedAt: now() }).where(and(eq(devices.id, deviceId), eq(devices.status, 'pending'))).returning({ id: devices.id });
        if (updated) await audit.record({ actorId: `device:${deviceId}`, actorRole: 'device', action: 'device.status', targetType: 'device', targetId: deviceId, before: { status: 'pending' }, after: { status: 'active', why: 'first connection' } }, tx);
      });
    },

    listCertificates(filter: { deviceId?: string; expiringWithinDays?: number } = {}): Promise<Omit<CertificateRow, 'pem'>[]> {
      const conditions = [];
      if (filter.deviceId) conditions.push(eq(certificates.deviceId, filter.deviceId));
      if (filter.expiringWithinDays !== undefined) {
        conditions.push(eq(certificates.status, 'active'), lte(certificates.notAfter, new Date(now().getTime() + filter.expiringWithinDays * 86_400_000)));
      }
      const { pem: _pem, ...columns } = getTableColumns(certificates);
      return db.select(columns).from(certificates).where(conditions.length ? and(...conditions) : undefined).orderBy(asc(certificates.notAfter));
    },

    async requestRotation(deviceId: string, actor: AuditActor): Promise<void> {
      await db.transaction(async (tx) => {
        const [row] = await tx.update(devices).set({ rotationRequested: true, updatedAt: now() }).where(eq(devices.id, deviceId)).returning({ id: devices.id });
        if (!row) throw new PkiErrors.DeviceNotEnrollable(deviceId, 'unknown');
        await audit.record({ ...actor, action: 'certificate.rotation_requested', targetType: 'device', targetId: deviceId, after: { rotationRequested: true } }, tx);
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
        const [current] = await tx.select().from(certificates).where(eq(certificates.serial, session.certSerial)).for('update');
        const [device] = await tx.select().from(devices).where(eq(devices.id, session.deviceId));
        if (!current || !device) throw new PkiErrors.CertificateNotFound(session.certSerial);
        const windowOpens = current.notAfter.getTime() - config.renewalWindowDays * 86_400_000;
        if (!device.rotationRequested && now().getTime() < windowOpens) throw new PkiErrors.RenewalNotAllowed(config.renewalWindowDays, current.notAfter.toISOString());
        const actor = { actorId: `device:${session.deviceId}`, actorRole: 'device', ip: session.remoteAddress ?? null };
        const issued = await issue(tx, session.deviceId, publicKey, actor, 'certificate.renew', { replaces: current.serial });
        const retireAfter = new Date(now().getTime() + config.rotationOverlapHours * 3_600_000);
        await tx.update(certificates).set({ replacedBy: issued.serial, retireAfter }).where(eq(certificates.serial, current.serial));
        await tx.update(devices).set({ rotationRequested: false }).where(eq(devices.id, session.deviceId));
        return issued;
      });
    },

    /** Revokes (superseded) every replaced certificate whose overlap has ended. */
    async retireSuperseded(): Promise<string[]> {
      const due = await db
        .select({ serial: certificates.serial })
        .from(certificates)
        .where(and(eq(certificates.status, 'active'), lte(certificates.retireAfter, now()), isNull(certificates.revokedAt)));
      for (const { serial } of due) {
        await db.transaction((tx) => revokeIn(tx, serial, 'superseded', { actorId: 'system:rotation', actorRole: 'system' }));
      }
      if (due.length > 0) await buildCurrentCrl();
      return due.map((d) => d.serial);
    },
  };
}

export type Pki = ReturnType<typeof createPki>;
