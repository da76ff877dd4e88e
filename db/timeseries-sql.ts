// layer: the metric names are the device contract's, defined once; the per-metric SQL follows that list
import type { MetricName } from '../devices/metrics.ts';

/**
 * What the time-series queries share (db/timeseries.ts, db/timeseries-days.ts): the types, and
 * the per-metric SQL of a rollup's four columns.
 */

export interface Queryable {
  query<R extends object = Record<string, unknown>>(
    text: string,
    params?: unknown[],
  ): Promise<{ rows: R[] }>;
}

export type TimeseriesMode = 'hypertable' | 'partitioned';

export interface RollupQuery {
  /** One of deviceId or unitId. A unit's rollup combines all its devices (count-weighted). */
  deviceId?: string;
  unitId?: string;
  from: Date;
  to: Date;
  bucket: 'hour' | 'day';
  metrics: readonly MetricName[];
  /**
   * IANA zone whose calendar days 'day' buckets are (config DASHBOARD_TIME_ZONE); UTC when
   * absent. A day bucket starts at the zone's midnight, whatever its offset that day.
   */
  timeZone?: string;
}

export interface RollupPoint {
  bucket: Date;
  /** Per metric: min, max, avg, count; null where no value fell in the bucket. */
  values: Partial<
    Record<MetricName, { min: number; max: number; avg: number; count: number } | null>
  >;
}

/** A unit's readings are found through its devices' keys (readings has no unit index). */
export const devicesOf = (key: 'device_id' | 'unit_id') =>
  key === 'device_id'
    ? `device_id = $1`
    : `device_id IN (SELECT id FROM devices WHERE unit_id = $1) AND unit_id = $1`;

/** Per metric: min, max, the count-weighted mean and the count, combined over a bucket's rows. */
export function combined(metrics: readonly MetricName[]): string {
  return metrics
    .map(
      (m) =>
        `min(${m}_min) AS ${m}_min, max(${m}_max) AS ${m}_max, ` +
        `sum(${m}_avg * ${m}_count) / nullif(sum(${m}_count), 0) AS ${m}_avg, sum(${m}_count)::bigint AS ${m}_count`,
    )
    .join(', ');
}

/** The same four columns from raw readings. */
export function fromRaw(metrics: readonly MetricName[]): string {
  return metrics
    .map(
      (m) =>
        `min(${m}) AS ${m}_min, max(${m}) AS ${m}_max, avg(${m}) AS ${m}_avg, count(${m}) AS ${m}_count`,
    )
    .join(', ');
}

export function pointsOf(
  rows: Record<string, unknown>[],
  metrics: readonly MetricName[],
): RollupPoint[] {
  return rows.map((row) => {
    const values: RollupPoint['values'] = {};
    for (const m of metrics) {
      const count = Number(row[`${m}_count`] ?? 0);
      values[m] =
        count === 0
          ? null
          : {
              min: Number(row[`${m}_min`]),
              max: Number(row[`${m}_max`]),
              avg: Number(row[`${m}_avg`]),
              count,
            };
    }
    return { bucket: new Date(row.bucket as string | Date), values };
  });
}
