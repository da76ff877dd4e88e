import {
  bigint,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';
import { bytea } from './types.ts';

/** Rejected telemetry, kept with the reason for every field: never silently dropped. */
export const quarantine = pgTable(
  'quarantine',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    deviceId: text('device_id').notNull(),
    unitId: uuid('unit_id').notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true }).notNull(),
    topic: text('topic').notNull(),
    /** The payload as received, capped (INGEST_QUARANTINE_PAYLOAD_BYTES); payload_size is the original size. */
    payload: bytea('payload').notNull(),
    payloadSize: integer('payload_size').notNull(),
    /** Index of the reading in a batch; null for the whole payload. */
    batchIndex: integer('batch_index'),
    seq: bigint('seq', { mode: 'number' }),
    reasons: jsonb('reasons').$type<{ field: string; code: string; message: string }[]>().notNull(),
    status: text('status', { enum: ['open', 'replayed', 'discarded'] })
      .notNull()
      .default('open'),
    replayedAt: timestamp('replayed_at', { withTimezone: true }),
    replayResult: jsonb('replay_result'),
  },
  (t) => [
    index('quarantine_device_idx').on(t.deviceId, t.receivedAt),
    index('quarantine_status_idx').on(t.status, t.receivedAt),
  ],
);

/** The last value of every metric per device: what dashboards read first. */
export const latestReadings = pgTable(
  'latest_readings',
  {
    deviceId: text('device_id').notNull(),
    metric: text('metric').notNull(),
    unitId: uuid('unit_id').notNull(),
    ts: timestamp('ts', { withTimezone: true }).notNull(),
    value: doublePrecision('value').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.deviceId, t.metric] }),
    index('latest_readings_unit_idx').on(t.unitId),
  ],
);

export type QuarantineRow = typeof quarantine.$inferSelect;
