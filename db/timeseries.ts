// layer: the metric names are the device contract's, defined once; the per-metric SQL follows that list
import { metricNames } from '../devices/metrics.ts';
import { localDays } from './timeseries-days.ts';
import {
  combined,
  devicesOf,
  fromRaw,
  pointsOf,
  type Queryable,
  type RollupPoint,
  type RollupQuery,
  type TimeseriesMode,
} from './timeseries-sql.ts';

export type { Queryable, RollupPoint, RollupQuery, TimeseriesMode } from './timeseries-sql.ts';
export { hourPieces, type HourPiece } from './timeseries-days.ts';

/**
 * The time-series module: the one place that knows whether `readings` is a TimescaleDB hypertable
 * or a natively partitioned table (migration 0001_timeseries). Callers use the same functions and
 * the same relations (readings, readings_hourly, readings_daily) on both paths.
 */

export interface TimeseriesInfo {
  mode: TimeseriesMode;
  /** Installed TimescaleDB version, when the hypertable path is in use. */
  timescaleVersion: string | undefined;
  /** Rollups are TimescaleDB continuous aggregates (else views over date_bin()). */
  continuousAggregates: boolean;
  compression: boolean;
}

/** What the server offers, before migration: the extension must be installed and preloaded. */
export async function detectTimescale(
  q: Queryable,
): Promise<{ available: boolean; preloaded: boolean }> {
  const { rows } = await q.query<{ available: boolean; preloaded: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS available,
            coalesce(current_setting('shared_preload_libraries', true), '') ~ 'timescaledb' AS preloaded`,
  );
  return rows[0] ?? { available: false, preloaded: false };
}

/** What the migration chose, read back from the catalogue. */
export async function timeseriesInfo(q: Queryable): Promise<TimeseriesInfo> {
  const { rows } = await q.query<{ relkind: string; extversion: string | null }>(
    `SELECT c.relkind, (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS extversion
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relname = 'readings' AND n.nspname = current_schema()`,
  );
  const row = rows[0];
  if (!row) throw new Error('table "readings" does not exist: run `thamani migrate`');
  if (row.relkind === 'p' || row.extversion === null) {
    return {
      mode: 'partitioned',
      timescaleVersion: undefined,
      continuousAggregates: false,
      compression: false,
    };
  }
  const features = await q.query<{ cagg: boolean; compression: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates WHERE view_name = 'readings_hourly') AS cagg,
            coalesce((SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_name = 'readings'), false) AS compression`,
  );
  return {
    mode: 'hypertable',
    timescaleVersion: row.extversion,
    continuousAggregates: features.rows[0]?.cagg ?? false,
    compression: features.rows[0]?.compression ?? false,
  };
}

/**
 * Partitioned path: make sure weekly partitions exist from `behindDays` ago to `aheadDays` ahead
 * (ingest refuses readings outside that window anyway). No-op on a hypertable, which makes chunks
 * as data arrives. Returns how many partitions were created.
 */
export async function ensurePartitions(
  q: Queryable,
  mode: TimeseriesMode,
  opts: { aheadDays: number; behindDays: number },
): Promise<number> {
  if (mode === 'hypertable') return 0;
  const { rows } = await q.query<{ made: number }>(
    `SELECT readings_ensure_partitions(make_interval(days => $1), make_interval(days => $2)) AS made`,
    [opts.aheadDays, opts.behindDays],
  );
  return rows[0]?.made ?? 0;
}

/**
 * Raw retention: removes raw readings older than `cutoff` from the live table. Partitioned path:
 * whole weekly partitions are detached (kept as tables to archive). Hypertable path: chunks are
 * dropped. Rollups survive on both paths: the continuous aggregates are refreshed first, and on
 * the partitioned path each partition is aggregated into the rollup archives before it goes.
 * Returns the names of what was detached or dropped.
 */
export async function expireRawReadings(
  q: Queryable,
  mode: TimeseriesMode,
  cutoff: Date,
): Promise<string[]> {
  if (mode === 'hypertable') {
    // Make sure the rollups hold everything about to go (the refresh policy may lag behind).
    const caggs = await q.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM timescaledb_information.continuous_aggregates WHERE view_name IN ('readings_hourly', 'readings_daily')`,
    );
    if ((caggs.rows[0]?.n ?? 0) === 2) {
      await q.query(`CALL refresh_continuous_aggregate('readings_hourly', NULL, $1::timestamptz)`, [
        cutoff.toISOString(),
      ]);
      await q.query(
        `CALL refresh_continuous_aggregate('readings_daily', NULL, date_trunc('day', $1::timestamptz))`,
        [cutoff.toISOString()],
      );
    }
  }
  const sql =
    mode === 'partitioned'
      ? `SELECT readings_detach_before($1) AS name`
      : `SELECT drop_chunks('readings', older_than => $1::timestamptz)::text AS name`;
  const { rows } = await q.query<{ name: string }>(sql, [cutoff.toISOString()]);
  return rows.map((r) => r.name);
}

/**
 * Rollup series (min, max, count-weighted avg, count per bucket) for one device or unit.
 *
 * `mode` picks the fastest source: TimescaleDB reads the continuous aggregates (indexed by
 * bucket); the partitioned path aggregates raw readings over the asked range itself, so the
 * planner prunes partitions and walks the (device_id, ts) key (a filter on the views' bucket
 * column could do neither), plus the archived rollups of detached partitions. Without `mode` the
 * readings_hourly/daily views are read (same answer, slower on long histories). `scoped`: the
 * caller is the API role, which reads rollups through the scoped_* views on TimescaleDB.
 */
export async function rollup(
  q: Queryable,
  query: RollupQuery,
  opts: { mode?: TimeseriesMode; scoped?: boolean } = {},
): Promise<RollupPoint[]> {
  if ((query.deviceId === undefined) === (query.unitId === undefined))
    throw new Error('rollup needs exactly one of deviceId or unitId');
  const metrics = query.metrics.filter((m) => metricNames.includes(m));
  if (metrics.length === 0) return [];
  if (query.bucket === 'day') return localDays(q, query, metrics, opts);
  const key = query.deviceId !== undefined ? 'device_id' : 'unit_id';
  const keyValue = query.deviceId ?? query.unitId;
  // Metric names come from the catalogue only (filtered above), never from the caller's text.
  const cols = combined(metrics);
  let source = `(SELECT * FROM ${opts.scoped && opts.mode === 'hypertable' ? 'scoped_readings_hourly' : 'readings_hourly'} WHERE ${key} = $1 AND bucket >= $2 AND bucket < $3) r`;
  if (opts.mode === 'partitioned') {
    const archived = metrics.map((m) => `${m}_min, ${m}_max, ${m}_avg, ${m}_count`).join(', ');
    source = `(SELECT date_bin(interval '1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket, ${fromRaw(metrics)}
                 FROM readings WHERE ${devicesOf(key)} AND ts >= $2 AND ts < $3 GROUP BY 1
               UNION ALL
               SELECT bucket, ${archived} FROM readings_hourly_archive WHERE ${key} = $1 AND bucket >= $2 AND bucket < $3) r`;
  }
  const { rows } = await q.query<Record<string, unknown>>(
    `SELECT bucket, ${cols} FROM ${source} GROUP BY bucket ORDER BY bucket`,
    [keyValue, query.from.toISOString(), query.to.toISOString()],
  );
  return pointsOf(rows, metrics);
}
