import { and, desc, eq, lt, sql, type SQL } from 'drizzle-orm';
import type { DbExecutor } from '../db/scoped.ts';
import type { Queryable } from '../db/timeseries.ts';
import { devices, quarantine, type QuarantineRow } from '../db/schema/index.ts';

/**
 * The SQL of ingest outside the group-commit writer (ingest/batch-writer.ts): a device's
 * sequence on first contact, and the quarantine that technicians look at and replay.
 */

/**
 * A device's sequence on first contact: the newest instant of any reading, and the newest
 * reading that carried a seq of its own. SenML readings are stored with their time in ms as seq;
 * those are passed over (a look at the last 1000 readings is enough: a device that sent only
 * SenML lately has no seq to keep to).
 */
const LOAD_SEQ = `
  WITH recent AS MATERIALIZED (SELECT seq, ts FROM readings WHERE device_id = $1 ORDER BY ts DESC LIMIT 1000)
  SELECT (SELECT max(ts) FROM recent) AS max_ts, s.seq, s.ts
  FROM (SELECT 1) one LEFT JOIN LATERAL (
    SELECT seq, ts FROM recent WHERE abs(seq - floor(extract(epoch FROM ts) * 1000)::int8) > 1 ORDER BY ts DESC LIMIT 1
  ) s ON true`;

export const ingestRepo = {
  seqHistory: async (q: Queryable, deviceId: string) =>
    (
      await q.query<{ max_ts: Date | null; seq: string | null; ts: Date | null }>(LOAD_SEQ, [
        deviceId,
      ])
    ).rows[0],

  /** How many of these instants of the device hold a reading. */
  storedAt: async (q: Queryable, deviceId: string, ts: string[]): Promise<number> =>
    (
      await q.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM readings WHERE device_id = $1 AND ts = ANY($2::timestamptz[])`,
        [deviceId, ts],
      )
    ).rows[0]!.n,

  quarantined(
    db: DbExecutor,
    filter: {
      deviceId?: string | undefined;
      status?: QuarantineRow['status'] | undefined;
      before?: number | undefined;
      /** Items with at least one reason of this code (VALUE_OUT_OF_RANGE, …). */
      reason?: string | undefined;
      limit: number;
    },
  ): Promise<QuarantineRow[]> {
    const conditions: SQL[] = [];
    if (filter.deviceId) conditions.push(eq(quarantine.deviceId, filter.deviceId));
    if (filter.reason)
      conditions.push(
        sql`${quarantine.reasons} @> ${JSON.stringify([{ code: filter.reason }])}::jsonb`,
      );
    if (filter.status) conditions.push(eq(quarantine.status, filter.status));
    if (filter.before) conditions.push(lt(quarantine.id, filter.before));
    return db
      .select()
      .from(quarantine)
      .where(conditions.length ? and(...conditions) : undefined)
      .orderBy(desc(quarantine.id))
      .limit(filter.limit);
  },

  quarantineItem: async (db: DbExecutor, id: number): Promise<QuarantineRow | undefined> =>
    (await db.select().from(quarantine).where(eq(quarantine.id, id)))[0],

  deviceKind: async (db: DbExecutor, deviceId: string) =>
    (await db.select({ kind: devices.kind }).from(devices).where(eq(devices.id, deviceId)))[0]
      ?.kind,

  async closeQuarantineItem(
    db: DbExecutor,
    id: number,
    set: { status: 'replayed' | 'discarded'; replayedAt: Date; replayResult: unknown },
  ): Promise<void> {
    await db.update(quarantine).set(set).where(eq(quarantine.id, id));
  },
};
