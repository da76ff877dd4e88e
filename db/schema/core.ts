import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  doublePrecision,
  foreignKey,
  index,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uuid,
} from 'drizzle-orm/pg-core';
// layer: device kinds and metric names are the device contract's, defined once; the columns follow that list
import { deviceKinds, metricNames, type MetricName } from '../../devices/metrics.ts';

export const unitKind = pgEnum('unit_kind', deviceKinds);
export const deviceStatus = pgEnum('device_status', ['pending', 'active', 'suspended', 'retired']);

/** An institution that runs units, e.g. a school kitchen. */
export const sites = pgTable('sites', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull().unique(),
  county: text('county'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/** An operational unit at a site: a biodigester or a waste collection point. */
export const units = pgTable(
  'units',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    siteId: uuid('site_id')
      .notNull()
      .references(() => sites.id, { onDelete: 'restrict' }),
    kind: unitKind('kind').notNull(),
    name: text('name').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    unique('units_site_name_uq').on(t.siteId, t.name),
    // Target of devices' composite key: a device's kind always equals its unit's kind.
    unique('units_id_kind_uq').on(t.id, t.kind),
  ],
);

/**
 * A sensor. Its id is the subject CN of its certificates and the {id} of its MQTT topics, so it
 * is restricted to characters that are safe in both (no '/', '+', '#').
 */
export const devices = pgTable(
  'devices',
  {
    id: text('id').primaryKey(),
    unitId: uuid('unit_id').notNull(),
    kind: unitKind('kind').notNull(),
    status: deviceStatus('status').notNull().default('pending'),
    labels: jsonb('labels').$type<Record<string, string>>().notNull().default({}),
    hardwareRevision: text('hardware_revision'),
    firmwareVersion: text('firmware_version'),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }),
    online: boolean('online').notNull().default(false),
    /** The gateway node holding its session while online (gateway_nodes.id; broker/presence.ts). */
    nodeId: text('node_id'),
    /** A technician asked for a new certificate: the device may renew outside the window. */
    rotationRequested: boolean('rotation_requested').notNull().default(false),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    foreignKey({
      name: 'devices_unit_kind_fk',
      columns: [t.unitId, t.kind],
      foreignColumns: [units.id, units.kind],
    }).onDelete('restrict'),
    check('devices_id_format', sql`${t.id} ~ '^[a-z0-9][a-z0-9_-]{2,63}$'`),
    index('devices_unit_idx').on(t.unitId),
  ],
);

/**
 * Gateway nodes alive, each writing its heartbeat every few seconds: a node that stops (SIGKILL,
 * a lost machine) is found by the others, which set its devices offline (broker/presence.ts).
 */
export const gatewayNodes = pgTable('gateway_nodes', {
  id: text('id').primaryKey(),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
  heartbeatAt: timestamp('heartbeat_at', { withTimezone: true }).notNull().defaultNow(),
});

/**
 * Time-series, wide layout: one row per (device, instant), one nullable column per catalogued
 * metric (devices/metrics.ts). ADR 0001 has the measurements behind that choice. The timeseries
 * migration makes it a hypertable (TimescaleDB) or a range-partitioned table (plain PostgreSQL);
 * db/timeseries.ts hides the difference.
 */
export const readings = pgTable(
  'readings',
  {
    ts: timestamp('ts', { withTimezone: true }).notNull(),
    deviceId: text('device_id').notNull(),
    unitId: uuid('unit_id').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    ...metricColumns(),
  },
  // Idempotency: one row per device and instant; a replay of it is a duplicate.
  (t) => [primaryKey({ name: 'readings_pk', columns: [t.deviceId, t.ts] })],
);

function metricColumns(): { [M in MetricName]: ReturnType<typeof doublePrecision> } {
  return Object.fromEntries(metricNames.map((m) => [m, doublePrecision(m)])) as {
    [M in MetricName]: ReturnType<typeof doublePrecision>;
  };
}

export type Site = typeof sites.$inferSelect;
export type Unit = typeof units.$inferSelect;
export type Device = typeof devices.$inferSelect;
export type Reading = typeof readings.$inferSelect;
