import {
  bigint,
  boolean,
  check,
  index,
  integer,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import { bytea } from './types.ts';
// layer: the role names are auth's vocabulary, defined once; the column's enum follows that list
import { roles } from '../../auth/permissions.ts';
// layer: the languages are the catalogue's (i18n/), defined once; the column accepts only those
import { languages } from '../../i18n/index.ts';
import { units } from './core.ts';

export const userRole = pgEnum('user_role', roles);
export const userTokenPurpose = pgEnum('user_token_purpose', ['setup', 'reset']);

/**
 * Operators. Exactly one role each (a column, not a join table). `password_hash` holds the KDF,
 * its parameters and salt (auth/password-fns.ts); null until the setup link is used. Erasure
 * replaces the personal fields and keeps the id and number, which immutable records (the audit
 * log, alerts.acknowledged_by_id, firmware approvals) refer to; names are looked up at display
 * time (actor_display_name(), migration 0017).
 */
export const users = pgTable(
  'users',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** A short pseudonym for display once the person is erased ("erased user #41"); never reused. */
    number: integer('number').notNull().unique().generatedAlwaysAsIdentity(),
    username: text('username').notNull().unique(),
    displayName: text('display_name').notNull(),
    email: text('email'),
    role: userRole('role').notNull(),
    /** The language of the user's pages and messages (i18n/ `languages`); NULL: the browser's. */
    language: text('language', { enum: languages }),
    passwordHash: text('password_hash'),
    disabled: boolean('disabled').notNull().default(false),
    erasedAt: timestamp('erased_at', { withTimezone: true }),
    passwordChangedAt: timestamp('password_changed_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [check('users_language_known', sql`${t.language} IN ('en', 'sw')`)],
);

/** Browser sessions. The cookie carries a random id; only its SHA-256 is stored. */
export const sessions = pgTable(
  'sessions',
  {
    idHash: bytea('id_hash').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    csrfToken: text('csrf_token').notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [index('sessions_user_idx').on(t.userId)],
);

/**
 * Bearer tokens for automation and simulators: hashed, one role each, revocable, always expiring.
 * `owner_id`: the user the token acts for (null: made by the CLI/system). The token is honoured
 * only while that user is active and its role still covers the token's (auth/session-service.ts).
 */
export const apiTokens = pgTable(
  'api_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    tokenHash: bytea('token_hash').notNull().unique(),
    role: userRole('role').notNull(),
    createdBy: text('created_by').notNull(),
    ownerId: uuid('owner_id').references(() => users.id),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [index('api_tokens_owner_idx').on(t.ownerId)],
);

/**
 * Sign-in attempts per account and per client IP, counted in the database so that counting is
 * atomic (one INSERT … ON CONFLICT DO UPDATE … RETURNING per attempt, before any hashing) and
 * shared by every process. Keys are SHA-256 of `account:<name>` / `ip:<addr>`: no personal data
 * at rest. A fixed window per key: `attempts` counts reserved and failed attempts since
 * `window_start`.
 */
export const loginThrottle = pgTable('login_throttle', {
  keyHash: bytea('key_hash').primaryKey(),
  windowStart: timestamp('window_start', { withTimezone: true }).notNull(),
  attempts: integer('attempts').notNull(),
});

/** Single-use, time-limited links: first-login setup and password reset. */
export const userTokens = pgTable('user_tokens', {
  tokenHash: bytea('token_hash').primaryKey(),
  userId: uuid('user_id')
    .notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  purpose: userTokenPurpose('purpose').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  usedAt: timestamp('used_at', { withTimezone: true }),
});

/** Which units a kitchen manager or collector may see; row-level security reads this. */
export const userUnitAssignments = pgTable(
  'user_unit_assignments',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    unitId: uuid('unit_id')
      .notNull()
      .references(() => units.id, { onDelete: 'cascade' }),
  },
  (t) => [
    primaryKey({ name: 'user_unit_assignments_pk', columns: [t.userId, t.unitId] }),
    index('user_unit_assignments_unit_idx').on(t.unitId),
  ],
);

/** Where the audit chain starts after retention removed its oldest entries (one row). */
export const auditAnchor = pgTable('audit_anchor', {
  id: boolean('id').primaryKey().default(true),
  throughId: text('through_id').notNull(),
  lastHash: bytea('last_hash').notNull(),
  /** Chain position of the last removed entry (null: removed before positions existed). */
  throughSeq: bigint('through_seq', { mode: 'number' }),
  at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
});

export type User = typeof users.$inferSelect;
export type Session = typeof sessions.$inferSelect;
export type ApiToken = typeof apiTokens.$inferSelect;
