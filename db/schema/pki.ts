import { sql } from 'drizzle-orm';
import { bytea } from './types.ts';
import {
  bigint,
  check,
  index,
  pgTable,
  smallint,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';
import { devices } from './core.ts';

/** Every certificate our issuing CA signed for a device. Expiry is read from not_after. */
export const certificates = pgTable(
  'certificates',
  {
    /** Lower-case hex without leading zeros (the form the broker normalises to). */
    serial: text('serial').primaryKey(),
    deviceId: text('device_id')
      .notNull()
      .references(() => devices.id, { onDelete: 'restrict' }),
    fingerprintSha256: text('fingerprint_sha256').notNull().unique(),
    notBefore: timestamp('not_before', { withTimezone: true }).notNull(),
    notAfter: timestamp('not_after', { withTimezone: true }).notNull(),
    status: text('status', { enum: ['active', 'revoked'] })
      .notNull()
      .default('active'),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    /** RFC 5280 §5.3.1 CRLReason. */
    revocationReason: smallint('revocation_reason'),
    /** Set when a renewal replaced it: revoked automatically (superseded) at this time. */
    retireAfter: timestamp('retire_after', { withTimezone: true }),
    replacedBy: text('replaced_by'),
    issuedBy: text('issued_by').notNull(),
    issuedAt: timestamp('issued_at', { withTimezone: true }).notNull().defaultNow(),
    pem: text('pem').notNull(),
  },
  (t) => [
    index('certificates_device_idx').on(t.deviceId),
    index('certificates_not_after_idx').on(t.notAfter),
    check(
      'certificates_revocation_consistent',
      sql`(${t.status} = 'revoked') = (${t.revokedAt} IS NOT NULL)`,
    ),
  ],
);

/** One-time enrolment tokens: only a SHA-256 of the token is kept. */
export const enrolmentTokens = pgTable(
  'enrolment_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    deviceId: text('device_id')
      .notNull()
      .references(() => devices.id, { onDelete: 'cascade' }),
    tokenHash: bytea('token_hash').notNull().unique(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true }),
    /** Serial of the certificate the token was spent on. */
    usedFor: text('used_for'),
    createdBy: text('created_by').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('enrolment_tokens_device_idx').on(t.deviceId)],
);

/** The CRL number is monotonic (RFC 5280 §5.2.3): one row, incremented per CRL issued. */
export const pkiState = pgTable('pki_state', {
  id: smallint('id').primaryKey().default(1),
  crlNumber: bigint('crl_number', { mode: 'number' }).notNull().default(0),
});

export type CertificateRow = typeof certificates.$inferSelect;
