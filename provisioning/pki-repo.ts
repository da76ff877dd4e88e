import { and, asc, eq, getTableColumns, gt, isNull, lte, ne, sql } from 'drizzle-orm';
import type { DbExecutor } from '../db/scoped.ts';
import {
  certificates,
  devices,
  enrolmentTokens,
  pkiState,
  type CertificateRow,
} from '../db/schema/index.ts';

/**
 * The SQL of our certificate authority's registry: certificates, enrolment tokens, the CRL
 * number, and the device columns enrolment and rotation change. drizzle throughout; each
 * function takes the handle it runs on (the service decides the transaction).
 */

type CertificateInsert = typeof certificates.$inferInsert;

export const pkiRepo = {
  device: async (db: DbExecutor, id: string) =>
    (await db.select().from(devices).where(eq(devices.id, id)))[0],

  /** The device, locked for an issuance in this transaction. */
  lockDevice: async (db: DbExecutor, id: string) =>
    (await db.select().from(devices).where(eq(devices.id, id)).for('update'))[0],

  insertCertificate: async (db: DbExecutor, row: CertificateInsert) =>
    (await db.insert(certificates).values(row).returning())[0]!,

  /** The certificate, locked for a change in this transaction. */
  lockCertificate: async (db: DbExecutor, serial: string) =>
    (await db.select().from(certificates).where(eq(certificates.serial, serial)).for('update'))[0],

  revokeCertificate: async (db: DbExecutor, serial: string, at: Date, reasonCode: number) =>
    (
      await db
        .update(certificates)
        .set({ status: 'revoked', revokedAt: at, revocationReason: reasonCode })
        .where(eq(certificates.serial, serial))
        .returning()
    )[0]!,

  /** The device's other certificates that are still active. */
  activeSerialsExcept: (db: DbExecutor, deviceId: string, serial: string) =>
    db
      .select({ serial: certificates.serial })
      .from(certificates)
      .where(
        and(
          eq(certificates.deviceId, deviceId),
          eq(certificates.status, 'active'),
          ne(certificates.serial, serial),
        ),
      ),

  /** Revoked certificates that have not expired (an expired one no longer needs listing, RFC 5280 §3.3). */
  revokedUnexpired: (db: DbExecutor, at: Date) =>
    db
      .select({
        serial: certificates.serial,
        revokedAt: certificates.revokedAt,
        reason: certificates.revocationReason,
      })
      .from(certificates)
      .where(and(eq(certificates.status, 'revoked'), gt(certificates.notAfter, at)))
      .orderBy(asc(certificates.revokedAt)),

  /** The next CRL number (1 for the first CRL). */
  nextCrlNumber: async (db: DbExecutor): Promise<number> =>
    (
      await db
        .insert(pkiState)
        .values({ id: 1, crlNumber: 1 })
        .onConflictDoUpdate({
          target: pkiState.id,
          set: { crlNumber: sql`${pkiState.crlNumber} + 1` },
        })
        .returning()
    )[0]!.crlNumber,

  /** Through the definer function (migration 0019): it takes the creator from the verified scope. */
  insertEnrolmentToken: async (
    db: DbExecutor,
    row: { deviceId: string; tokenHash: Buffer; expiresAt: Date },
  ): Promise<string> =>
    (
      await db.execute<{ id: string }>(
        sql`SELECT thamani_enrolment_token_insert(${row.deviceId}, ${row.tokenHash}, ${row.expiresAt}) AS id`,
      )
    ).rows[0]!.id,

  /** The enrolment token with this hash, locked for spending in this transaction. */
  lockEnrolmentToken: async (db: DbExecutor, tokenHash: Buffer) =>
    (
      await db
        .select()
        .from(enrolmentTokens)
        .where(eq(enrolmentTokens.tokenHash, tokenHash))
        .for('update')
    )[0],

  async spendEnrolmentToken(db: DbExecutor, id: string, at: Date, serial: string): Promise<void> {
    await db
      .update(enrolmentTokens)
      .set({ usedAt: at, usedFor: serial })
      .where(eq(enrolmentTokens.id, id));
  },

  /** Who a client certificate serial belongs to, and the state of both. */
  connectionIdentity: async (db: DbExecutor, serial: string) =>
    (
      await db
        .select({
          deviceId: devices.id,
          unitId: devices.unitId,
          kind: devices.kind,
          deviceStatus: devices.status,
          certStatus: certificates.status,
          notAfter: certificates.notAfter,
        })
        .from(certificates)
        .innerJoin(devices, eq(devices.id, certificates.deviceId))
        .where(eq(certificates.serial, serial))
    )[0],

  /** Many serials in one query (a revalidation sweep, CONNECTs gathered in a storm): the serials found. */
  async connectionIdentities(db: DbExecutor, serials: string[]) {
    if (serials.length === 0) return new Map<string, never>();
    const rows = await db
      .select({
        serial: certificates.serial,
        deviceId: devices.id,
        unitId: devices.unitId,
        kind: devices.kind,
        deviceStatus: devices.status,
        certStatus: certificates.status,
        notAfter: certificates.notAfter,
      })
      .from(certificates)
      .innerJoin(devices, eq(devices.id, certificates.deviceId))
      .where(sql`${certificates.serial} = ANY(${sql.param(serials)}::text[])`);
    return new Map(rows.map(({ serial, ...identity }) => [serial, identity]));
  },

  /** pending → active; true when this call made the change. */
  activatePending: async (db: DbExecutor, deviceId: string, at: Date): Promise<boolean> =>
    (
      await db
        .update(devices)
        .set({ status: 'active', updatedAt: at })
        .where(and(eq(devices.id, deviceId), eq(devices.status, 'pending')))
        .returning({ id: devices.id })
    ).length > 0,

  certificates(
    db: DbExecutor,
    filter: { deviceId?: string | undefined; activeNotAfterBy?: Date | undefined },
  ): Promise<Omit<CertificateRow, 'pem'>[]> {
    const conditions = [];
    if (filter.deviceId) conditions.push(eq(certificates.deviceId, filter.deviceId));
    if (filter.activeNotAfterBy)
      conditions.push(
        eq(certificates.status, 'active'),
        lte(certificates.notAfter, filter.activeNotAfterBy),
      );
    const { pem: _pem, ...columns } = getTableColumns(certificates);
    return db
      .select(columns)
      .from(certificates)
      .where(conditions.length ? and(...conditions) : undefined)
      .orderBy(asc(certificates.notAfter));
  },

  /** false when the device does not exist. */
  setRotationRequested: async (
    db: DbExecutor,
    deviceId: string,
    requested: boolean,
    at?: Date,
  ): Promise<boolean> =>
    (
      await db
        .update(devices)
        .set(
          at ? { rotationRequested: requested, updatedAt: at } : { rotationRequested: requested },
        )
        .where(eq(devices.id, deviceId))
        .returning({ id: devices.id })
    ).length > 0,

  async markReplaced(
    db: DbExecutor,
    serial: string,
    replacedBy: string,
    retireAfter: Date,
  ): Promise<void> {
    await db
      .update(certificates)
      .set({ replacedBy, retireAfter })
      .where(eq(certificates.serial, serial));
  },

  /** Replaced certificates whose overlap has ended. */
  dueForRetirement: (db: DbExecutor, at: Date) =>
    db
      .select({ serial: certificates.serial })
      .from(certificates)
      .where(
        and(
          eq(certificates.status, 'active'),
          lte(certificates.retireAfter, at),
          isNull(certificates.revokedAt),
        ),
      ),
};
