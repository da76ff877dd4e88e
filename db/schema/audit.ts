import { bigint, index, inet, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { bytea } from './types.ts';

/**
 * Append-only, hash-chained audit store: every administrative action and every security event.
 * `hash` = SHA-256 of the entry's canonical form including `prev_hash` (audit/audit-fns.ts).
 * `seq` is the chain position (1, 2, 3, … with no gaps), assigned under the chain lock; `id`
 * comes from a sequence and may have gaps. `signature` is Ed25519 over `hash` with a key the
 * database never holds (docs/decisions/0004-audit-signatures.md); entries written before the
 * key existed have none (the legacy prefix).
 */
export const auditLog = pgTable(
  'audit_log',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    at: timestamp('at', { withTimezone: true, precision: 3 }).notNull(),
    actorId: text('actor_id').notNull(),
    actorRole: text('actor_role').notNull(),
    ip: inet('ip'),
    userAgent: text('user_agent'),
    requestId: text('request_id'),
    action: text('action').notNull(),
    targetType: text('target_type').notNull(),
    targetId: text('target_id'),
    before: jsonb('before'),
    after: jsonb('after'),
    prevHash: bytea('prev_hash').notNull(),
    hash: bytea('hash').notNull().unique(),
    seq: bigint('seq', { mode: 'number' }).notNull().unique(),
    keyId: text('key_id'),
    signature: bytea('signature'),
  },
  (t) => [
    index('audit_log_at_idx').on(t.at),
    index('audit_log_target_idx').on(t.targetType, t.targetId),
    index('audit_log_action_idx').on(t.action),
  ],
);

/**
 * Where an audit entry's request came from (client IP, user agent): kept beside the entry, not
 * in it, because it is personal data with a retention of its own (SIGNIN_METADATA_RETENTION_DAYS)
 * and is removed when the person is erased, while the signed entry is immutable. Not covered by
 * the entry's signature (docs/security-model.md, "Privacy").
 */
export const auditRequestMeta = pgTable(
  'audit_request_meta',
  {
    /** audit_log.id. No foreign key: TRUNCATE of the log must meet its append-only trigger, not a constraint. */
    auditId: bigint('audit_id', { mode: 'number' }).primaryKey(),
    at: timestamp('at', { withTimezone: true, precision: 3 }).notNull(),
    ip: inet('ip'),
    userAgent: text('user_agent'),
  },
  (t) => [index('audit_request_meta_at_idx').on(t.at)],
);

export type AuditRow = typeof auditLog.$inferSelect;
export type AuditRequestMeta = typeof auditRequestMeta.$inferSelect;
