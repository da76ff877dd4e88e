import { sql } from 'drizzle-orm';
import {
  bigint,
  foreignKey,
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  unique,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { devices, unitKind, units } from './core.ts';

/**
 * Alert rules, one per (unit kind, metric, direction) or device condition. Defaults are written
 * at start from dashboards/alert-rules.ts (never over an operator's change). An alert opens when
 * a value crosses `warn` (`critical` raises its severity) and closes only when it is back past
 * `clear`: the gap between the two is the hysteresis that keeps a hovering value from flapping.
 */
export const alertRules = pgTable(
  'alert_rules',
  {
    /** Stable key, e.g. `biodigester.temperature_c.low`. */
    id: text('id').primaryKey(),
    unitKind: unitKind('unit_kind').notNull(),
    /** The metric compared (null for device conditions: offline, certificate expiry). */
    metric: text('metric'),
    condition: text('condition', {
      enum: ['above', 'below', 'offline_minutes', 'cert_expiry_days'],
    }).notNull(),
    warn: doublePrecision('warn').notNull(),
    critical: doublePrecision('critical'),
    clear: doublePrecision('clear').notNull(),
    enabled: boolean('enabled').notNull().default(true),
    title: text('title').notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  // Target of the overrides' composite key: an override's unit is of the rule's kind.
  (t) => [unique('alert_rules_id_kind_uq').on(t.id, t.unitKind)],
);

/**
 * One unit's own thresholds for one rule (a technician's override): they replace the kind's
 * warn, critical, clear and enabled for that unit only; without a row the unit follows the
 * kind's rule. The composite keys make an override of a digester rule on a collection point
 * impossible. Who changed it is an actor id, never a name (like `alerts.acknowledged_by_id`).
 */
export const alertRuleOverrides = pgTable(
  'alert_rule_overrides',
  {
    unitId: uuid('unit_id').notNull(),
    ruleId: text('rule_id').notNull(),
    unitKind: unitKind('unit_kind').notNull(),
    warn: doublePrecision('warn').notNull(),
    critical: doublePrecision('critical'),
    clear: doublePrecision('clear').notNull(),
    enabled: boolean('enabled').notNull().default(true),
    updatedById: text('updated_by_id').notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.unitId, t.ruleId] }),
    foreignKey({
      name: 'alert_rule_overrides_unit_fk',
      columns: [t.unitId, t.unitKind],
      foreignColumns: [units.id, units.kind],
    }).onDelete('cascade'),
    foreignKey({
      name: 'alert_rule_overrides_rule_fk',
      columns: [t.ruleId, t.unitKind],
      foreignColumns: [alertRules.id, alertRules.unitKind],
    }).onDelete('cascade'),
    index('alert_rule_overrides_rule_idx').on(t.ruleId),
  ],
);

/** An alert: opened by a rule for one device, closed when the condition clears. */
export const alerts = pgTable(
  'alerts',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    ruleId: text('rule_id')
      .notNull()
      .references(() => alertRules.id, { onDelete: 'restrict' }),
    deviceId: text('device_id')
      .notNull()
      .references(() => devices.id, { onDelete: 'restrict' }),
    unitId: uuid('unit_id').notNull(),
    severity: text('severity', { enum: ['warning', 'critical'] }).notNull(),
    status: text('status', { enum: ['open', 'closed'] })
      .notNull()
      .default('open'),
    openedAt: timestamp('opened_at', { withTimezone: true }).notNull(),
    closedAt: timestamp('closed_at', { withTimezone: true }),
    /** The value (or minutes offline, days to expiry) that opened it, and the latest seen. */
    openValue: doublePrecision('open_value'),
    lastValue: doublePrecision('last_value'),
    lastAt: timestamp('last_at', { withTimezone: true }),
    acknowledgedAt: timestamp('acknowledged_at', { withTimezone: true }),
    /** Who acknowledged it: an actor id (a user's id, `token:<id>`), never a name (display: actor_display_name()). */
    acknowledgedById: text('acknowledged_by_id'),
    ackNote: text('ack_note'),
  },
  (t) => [
    // One open alert per rule and device: a second crossing while open is the same alert.
    uniqueIndex('alerts_one_open_uq')
      .on(t.ruleId, t.deviceId)
      .where(sql`${t.status} = 'open'`),
    index('alerts_unit_idx').on(t.unitId, t.openedAt),
    index('alerts_status_idx').on(t.status, t.openedAt),
  ],
);

/** Outbound webhook deliveries (an outbox: written in the alert's transaction, sent after). */
export const alertNotifications = pgTable(
  'alert_notifications',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    alertId: bigint('alert_id', { mode: 'number' })
      .notNull()
      .references(() => alerts.id, { onDelete: 'restrict' }),
    event: text('event', { enum: ['opened', 'escalated', 'closed', 'acknowledged'] }).notNull(),
    payload: jsonb('payload').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    deliveredAt: timestamp('delivered_at', { withTimezone: true }),
    lastError: text('last_error'),
  },
  (t) => [
    index('alert_notifications_pending_idx')
      .on(t.nextAttemptAt)
      .where(sql`${t.deliveredAt} IS NULL`),
  ],
);

export type AlertRule = typeof alertRules.$inferSelect;
export type AlertRuleOverride = typeof alertRuleOverrides.$inferSelect;
export type Alert = typeof alerts.$inferSelect;
