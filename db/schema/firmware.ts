import { sql } from 'drizzle-orm';
import {
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uuid,
} from 'drizzle-orm/pg-core';
import { bytea } from './types.ts';
import { devices, unitKind } from './core.ts';

/**
 * Firmware images: content-addressed by SHA-256, immutable once uploaded (a trigger refuses any
 * change but the approval), stored in the database so they are backed up and transactional with
 * the registry. One version per device kind and hardware revision.
 */
export const firmwareImages = pgTable(
  'firmware_images',
  {
    sha256: text('sha256').primaryKey(),
    deviceKind: unitKind('device_kind').notNull(),
    /** null: every hardware revision of the kind. */
    hardwareRevision: text('hardware_revision'),
    version: text('version').notNull(),
    size: integer('size').notNull(),
    releaseNotes: text('release_notes').notNull().default(''),
    image: bytea('image').notNull(),
    uploadedBy: text('uploaded_by').notNull(),
    uploadedAt: timestamp('uploaded_at', { withTimezone: true }).notNull().defaultNow(),
    /** Four-eyes: someone other than the uploader. */
    approvedBy: text('approved_by'),
    approvedAt: timestamp('approved_at', { withTimezone: true }),
  },
  (t) => [
    unique('firmware_images_version_uq')
      .on(t.deviceKind, t.hardwareRevision, t.version)
      .nullsNotDistinct(),
  ],
);

/** A rollout of one image to a set of devices, in waves, pausing itself past a failure rate. */
export const firmwareRollouts = pgTable('firmware_rollouts', {
  id: uuid('id').primaryKey().defaultRandom(),
  imageSha256: text('image_sha256')
    .notNull()
    .references(() => firmwareImages.sha256, { onDelete: 'restrict' }),
  /** What was asked for: `{ devices }`, `{ unitId }`, `{ siteId }` or `{ kind, percent }`. */
  target: jsonb('target').notNull(),
  waveSize: integer('wave_size').notNull(),
  /** Share of a wave's devices that may fail before the rollout pauses (0–1). */
  failureThreshold: doublePrecision('failure_threshold').notNull(),
  allowDowngrade: boolean('allow_downgrade').notNull().default(false),
  manifestTtlHours: integer('manifest_ttl_hours').notNull(),
  status: text('status', { enum: ['active', 'paused', 'completed'] })
    .notNull()
    .default('active'),
  pausedReason: text('paused_reason'),
  createdBy: text('created_by').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export const firmwareRolloutDevices = pgTable(
  'firmware_rollout_devices',
  {
    rolloutId: uuid('rollout_id')
      .notNull()
      .references(() => firmwareRollouts.id, { onDelete: 'restrict' }),
    deviceId: text('device_id')
      .notNull()
      .references(() => devices.id, { onDelete: 'restrict' }),
    wave: integer('wave').notNull(),
    status: text('status', {
      enum: ['pending', 'sent', 'downloading', 'verifying', 'installed', 'failed', 'skipped'],
    })
      .notNull()
      .default('pending'),
    reason: text('reason'),
    fromVersion: text('from_version'),
    sentAt: timestamp('sent_at', { withTimezone: true }),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.rolloutId, t.deviceId] }),
    index('firmware_rollout_devices_device_idx')
      .on(t.deviceId)
      .where(sql`${t.status} NOT IN ('installed', 'failed', 'skipped')`),
  ],
);

export type FirmwareImage = typeof firmwareImages.$inferSelect;
export type FirmwareRollout = typeof firmwareRollouts.$inferSelect;
