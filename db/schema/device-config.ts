import { sql } from 'drizzle-orm';
import {
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
import { devices, unitKind, units } from './core.ts';

/**
 * Remote configuration (desired and reported state) and commands (docs/device-contract.md,
 * "Configuration" and "Commands"; ADR 0013). The desired state lives here, not in the broker:
 * it survives gateway restarts and is sent again whenever the device subscribes.
 */

/** Defaults of a device kind (unit_id null) or of one unit: a partial configuration. */
export const deviceConfigDefaults = pgTable(
  'device_config_defaults',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    kind: unitKind('kind').notNull(),
    unitId: uuid('unit_id').references(() => units.id, { onDelete: 'restrict' }),
    config: jsonb('config').notNull(),
    updatedBy: text('updated_by').notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [unique('device_config_defaults_scope_uq').on(t.kind, t.unitId).nullsNotDistinct()],
);

/** One row per device: its own overrides, the desired version, and what it last reported. */
export const deviceConfigs = pgTable('device_configs', {
  deviceId: text('device_id')
    .primaryKey()
    .references(() => devices.id, { onDelete: 'restrict' }),
  overrides: jsonb('overrides').notNull().default({}),
  desiredVersion: integer('desired_version').notNull(),
  /** The whole effective configuration at desired_version (defaults and overrides merged). */
  desired: jsonb('desired').notNull(),
  desiredAt: timestamp('desired_at', { withTimezone: true }).notNull().defaultNow(),
  /** Highest version the device said it applied (never moves back). */
  reportedVersion: integer('reported_version'),
  reportedAt: timestamp('reported_at', { withTimezone: true }),
  rejectedVersion: integer('rejected_version'),
  rejectReason: text('reject_reason'),
});

/** Every version ever desired, with when the device applied it (its own clock) or why it refused. */
export const deviceConfigVersions = pgTable(
  'device_config_versions',
  {
    deviceId: text('device_id')
      .notNull()
      .references(() => devices.id, { onDelete: 'restrict' }),
    version: integer('version').notNull(),
    config: jsonb('config').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    /** The device's instant from which its readings use this version (ack `appliedAt`). */
    appliedAt: timestamp('applied_at', { withTimezone: true }),
    ackedAt: timestamp('acked_at', { withTimezone: true }),
    rejectReason: text('reject_reason'),
  },
  (t) => [primaryKey({ columns: [t.deviceId, t.version] })],
);

/** A command to one device: correlation id, time-out, stored result. */
export const deviceCommands = pgTable(
  'device_commands',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    deviceId: text('device_id')
      .notNull()
      .references(() => devices.id, { onDelete: 'restrict' }),
    command: text('command', { enum: ['reboot', 'resend', 'diagnostics'] }).notNull(),
    params: jsonb('params').notNull().default({}),
    status: text('status', { enum: ['pending', 'sent', 'ok', 'error', 'timed_out'] })
      .notNull()
      .default('pending'),
    result: jsonb('result'),
    error: text('error'),
    createdBy: text('created_by').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    sentAt: timestamp('sent_at', { withTimezone: true }),
    completedAt: timestamp('completed_at', { withTimezone: true }),
  },
  (t) => [
    index('device_commands_open_idx')
      .on(t.deviceId, t.expiresAt)
      .where(sql`${t.status} IN ('pending', 'sent')`),
    index('device_commands_device_idx').on(t.deviceId, t.createdAt),
  ],
);

export type DeviceConfigRow = typeof deviceConfigs.$inferSelect;
export type DeviceCommandRow = typeof deviceCommands.$inferSelect;
