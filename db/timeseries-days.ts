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
// layer: the metric names are the device contract's, defined once; the per-metric SQL follows that list
import type { MetricName } from '../devices/metrics.ts';

/** The last instant of the hour starting at `hour` (SQL). */
const hourEnd = (hour: string) => `${hour} + interval '59 minutes 59.999999 seconds'`;
/** Whether the hour starting at `hour` is one of the straddling hours in $5 (SQL; no zone work per row). */
const straddles = (hour: string) => `${hour} = ANY($5::timestamptz[])`;

/**
 * The hours of [from, to) that hold a midnight of the zone (none where its offset is whole
 * hours), found once per query: a few rows, so no reading needs a zone computation to know.
 */
async function straddleHours(q: Queryable, from: Date, to: Date, zone: string): Promise<string[]> {
  const { rows } = await q.query<{ sh: string | Date }>(
    `SELECT date_trunc('hour', z.mid) AS sh FROM (
       SELECT d AT TIME ZONE $3::text AS mid
         FROM generate_series(($1::timestamptz AT TIME ZONE $3::text)::date::timestamp,
                              ($2::timestamptz AT TIME ZONE $3::text)::date::timestamp, interval '1 day') d) z
      WHERE date_trunc('hour', z.mid) <> z.mid`,
    [from.toISOString(), to.toISOString(), zone],
  );
  return rows.map((r) => new Date(r.sh).toISOString());
}

/**
 * Day buckets that are the zone's calendar days, not UTC's (the daily continuous aggregate and the
 * daily archive are UTC days, so neither can serve them). Built from hourly rollups: an hour lies
 * inside one local day in any zone whose offset is whole hours, and is grouped by that day
 * (TimescaleDB's time_bucket with a time zone; date_trunc(…, zone) on plain PostgreSQL). In a
 * zone such as Asia/Kolkata (+5:30) the hour holding local midnight straddles two days: its raw
 * readings are counted one by one, each in the day the zone says; only where raw readings are
 * gone (past raw retention) does the hourly row count, for the day it starts in.
 */
export async function localDays(
  q: Queryable,
  query: RollupQuery,
  metrics: readonly MetricName[],
  opts: { mode?: TimeseriesMode; scoped?: boolean },
): Promise<RollupPoint[]> {
  const key = query.deviceId !== undefined ? 'device_id' : 'unit_id';
  const keyValue = query.deviceId ?? query.unitId;
  // time_bucket's own zone argument on TimescaleDB; date_trunc's on plain PostgreSQL (both pick
  // the zone's midnight, DST included).
  const day = (col: string) =>
    opts.mode === 'hypertable'
      ? `time_bucket(interval '1 day', ${col}, timezone => $4::text)`
      : `date_trunc('day', ${col}, $4::text)`;
  const cols = metrics.map((m) => `${m}_min, ${m}_max, ${m}_avg, ${m}_count`).join(', ');
  const zone = query.timeZone ?? 'UTC';
  const hours = await straddleHours(q, query.from, query.to, zone);
  // The straddling hours' raw readings, each in its own local day.
  const split = `SELECT ${day('ts')} AS bucket, ${fromRaw(metrics)}
                   FROM readings WHERE ${devicesOf(key)} AND ts >= $2 AND ts < $3
                    AND ${straddles("date_trunc('hour', ts)")}
                  GROUP BY 1`;
  let parts: string[];
  if (opts.mode === 'partitioned') {
    // Raw readings by hour (no zone work per reading), each hour in its local day; the hourly
    // archive of detached partitions for the rest (raw gone: an hour counts for the day it
    // starts in).
    parts = [
      `SELECT ${day('x.h')} AS bucket, ${cols}
         FROM (SELECT date_trunc('hour', ts) AS h, ${fromRaw(metrics)}
                 FROM readings WHERE ${devicesOf(key)} AND ts >= $2 AND ts < $3 GROUP BY 1) x
        WHERE NOT ${straddles('x.h')}`,
      split,
      `SELECT ${day('bucket')}, ${cols} FROM readings_hourly_archive
        WHERE ${key} = $1 AND bucket >= $2 AND bucket < $3`,
    ];
  } else {
    const relation =
      opts.scoped && opts.mode === 'hypertable' ? 'scoped_readings_hourly' : 'readings_hourly';
    parts = [
      `SELECT ${day('h.bucket')} AS bucket, ${cols} FROM ${relation} h
        WHERE h.${key} = $1 AND h.bucket >= $2 AND h.bucket < $3
          AND (NOT ${straddles('h.bucket')}
               OR NOT EXISTS (SELECT 1 FROM readings r WHERE r.device_id = h.device_id
                                 AND r.ts >= h.bucket AND r.ts < h.bucket + interval '1 hour'))`,
      split,
    ];
  }
  const { rows } = await q.query<Record<string, unknown>>(
    `SELECT bucket, ${combined(metrics)} FROM (${parts.filter((p) => hours.length > 0 || p !== split).join(' UNION ALL ')}) r GROUP BY bucket ORDER BY bucket`,
    [keyValue, query.from.toISOString(), query.to.toISOString(), zone, hours],
  );
  return pointsOf(rows, metrics);
}

export interface HourPiece {
  /** Where the piece starts: the hour's start, or the zone's midnight inside the hour. */
  start: Date;
  /** 60 for a whole hour; the minutes before or after midnight for a piece of a straddling one. */
  minutes: number;
  /** The metric's mean over the piece's readings (all of the unit's devices, count-weighted). */
  mean: number;
}

/**
 * One metric of a unit per hour with data, each hour cut at the zone's midnight where one falls
 * inside it (a +5:30 or +5:45 zone): what daily sums such as biogas need so that every reading
 * counts in its own local day. Whole hours come from the hourly rollup; the pieces of a
 * straddling hour from its raw readings (past raw retention, the whole hour by its start).
 */
export async function hourPieces(
  q: Queryable,
  query: { unitId: string; from: Date; to: Date; metric: MetricName; timeZone: string },
  opts: { mode?: TimeseriesMode; scoped?: boolean },
): Promise<HourPiece[]> {
  const m = query.metric;
  const straddlesIn = (hour: string) => `${hour} = ANY($4::timestamptz[])`;
  const devices = devicesOf('unit_id');
  const whole =
    opts.mode === 'partitioned'
      ? `SELECT x.h AS start, 60::float8 AS minutes, x.m_avg, x.m_count
           FROM (SELECT date_trunc('hour', ts) AS h, avg(${m}) AS m_avg, count(${m}) AS m_count
                   FROM readings WHERE ${devices} AND ts >= $2 AND ts < $3 AND ${m} IS NOT NULL GROUP BY 1) x
          WHERE NOT ${straddlesIn('x.h')}
         UNION ALL
         SELECT bucket, 60::float8, ${m}_avg, ${m}_count FROM readings_hourly_archive
          WHERE unit_id = $1 AND bucket >= $2 AND bucket < $3 AND ${m}_count > 0`
      : `SELECT h.bucket AS start, 60::float8 AS minutes, h.${m}_avg AS m_avg, h.${m}_count AS m_count
           FROM ${opts.scoped && opts.mode === 'hypertable' ? 'scoped_readings_hourly' : 'readings_hourly'} h
          WHERE h.unit_id = $1 AND h.bucket >= $2 AND h.bucket < $3 AND h.${m}_count > 0
            AND (NOT ${straddlesIn('h.bucket')}
                 OR NOT EXISTS (SELECT 1 FROM readings r WHERE r.device_id = h.device_id
                                   AND r.ts >= h.bucket AND r.ts < h.bucket + interval '1 hour'))`;
  // A straddling hour's readings, each in the piece before or after the midnight `mid`.
  const split = `SELECT CASE WHEN x.ts < x.mid THEN x.h ELSE x.mid END AS start,
                        extract(epoch FROM CASE WHEN x.ts < x.mid THEN x.mid - x.h ELSE x.h + interval '1 hour' - x.mid END)::float8 / 60 AS minutes,
                        avg(x.v) AS m_avg, count(x.v) AS m_count
                   FROM (SELECT ts, ${m} AS v, date_trunc('hour', ts) AS h,
                                date_trunc('day', ${hourEnd("date_trunc('hour', ts)")}, $5::text) AS mid
                           FROM readings WHERE ${devices} AND ts >= $2 AND ts < $3 AND ${m} IS NOT NULL
                            AND ${straddlesIn("date_trunc('hour', ts)")}) x
                  GROUP BY 1, 2`;
  const hours = await straddleHours(q, query.from, query.to, query.timeZone);
  const { rows } = await q.query<{ start: string | Date; minutes: number; mean: number | null }>(
    `SELECT start, minutes, sum(m_avg * m_count) / nullif(sum(m_count), 0) AS mean
       FROM (${hours.length > 0 ? `${whole} UNION ALL ${split}` : whole}) r GROUP BY start, minutes ORDER BY start`,
    // The zone ($5) is needed only to cut the straddling hours ($4).
    [
      query.unitId,
      query.from.toISOString(),
      query.to.toISOString(),
      hours,
      ...(hours.length > 0 ? [query.timeZone] : []),
    ],
  );
  return rows
    .filter((r) => r.mean !== null)
    .map((r) => ({ start: new Date(r.start), minutes: Number(r.minutes), mean: Number(r.mean) }));
}
