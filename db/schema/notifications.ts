import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  index,
  integer,
  pgTable,
  smallint,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';
import { users } from './auth.ts';

/**
 * Per-user notification choices (notifications/, docs/operations.md "Notifications"). A user
 * without a row gets nothing: notifications are opt-in. Quiet hours are minutes of the local day
 * in the configured zone (DASHBOARD_TIME_ZONE); start > end spans midnight (22:00–06:00).
 */
export const notificationSettings = pgTable(
  'notification_settings',
  {
    userId: uuid('user_id')
      .primaryKey()
      .references(() => users.id, { onDelete: 'cascade' }),
    emailEnabled: boolean('email_enabled').notNull().default(false),
    smsEnabled: boolean('sms_enabled').notNull().default(false),
    /** Where to send; validated by the service (RFC 5321 shape, E.164 with a Kenyan +254 number). */
    email: text('email'),
    phone: text('phone'),
    quietStartMin: smallint('quiet_start_min'),
    quietEndMin: smallint('quiet_end_min'),
    /** Critical alerts are sent during quiet hours too. */
    criticalOverridesQuiet: boolean('critical_overrides_quiet').notNull().default(true),
    summary: text('summary', { enum: ['none', 'daily', 'weekly'] })
      .notNull()
      .default('none'),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check(
      'notification_settings_quiet',
      sql`(${t.quietStartMin} IS NULL) = (${t.quietEndMin} IS NULL) AND coalesce(${t.quietStartMin} BETWEEN 0 AND 1439 AND ${t.quietEndMin} BETWEEN 0 AND 1439, true)`,
    ),
  ],
);

/**
 * The notification outbox: one row per (alert or summary) × user × channel × event, written with
 * the alert's transition; the sender (notifications/notification-sender.ts) delivers it with
 * retries. `idempotency_key` makes a second enqueue of the same notification a no-op.
 */
export const notificationOutbox = pgTable(
  'notification_outbox',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    idempotencyKey: text('idempotency_key').notNull().unique(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    channel: text('channel', { enum: ['email', 'sms'] }).notNull(),
    kind: text('kind', { enum: ['alert', 'summary'] }).notNull(),
    alertId: bigint('alert_id', { mode: 'number' }),
    event: text('event').notNull(),
    /** Rendered at enqueue in the user's language: the address, subject (email) and text. */
    address: text('address').notNull(),
    subject: text('subject'),
    body: text('body').notNull(),
    /** The language it is written in (Content-Language of the email). */
    lang: text('lang').notNull().default('en'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    attempts: integer('attempts').notNull().default(0),
    /** Not before: the end of the user's quiet hours, or the next retry. */
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    deliveredAt: timestamp('delivered_at', { withTimezone: true }),
    /** Gave up: a permanent refusal (invalid number) or too many attempts; last_error says why. */
    failedAt: timestamp('failed_at', { withTimezone: true }),
    lastError: text('last_error'),
    /** The provider's id for the message (SMTP message id, Africa's Talking messageId). */
    providerId: text('provider_id'),
  },
  (t) => [
    index('notification_outbox_pending_idx')
      .on(t.nextAttemptAt)
      .where(sql`${t.deliveredAt} IS NULL AND ${t.failedAt} IS NULL`),
    index('notification_outbox_user_idx').on(t.userId, t.createdAt),
  ],
);

export type NotificationSettingsRow = typeof notificationSettings.$inferSelect;
export type NotificationOutboxRow = typeof notificationOutbox.$inferSelect;
