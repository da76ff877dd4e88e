import { metricNames, type MetricName } from '../devices/metrics.ts';
import type { Expect } from './seq-fns.ts';

/**
 * A device has at most one reading per instant (`readings` is keyed on (device_id, ts), ADR
 * 0001). What becomes of a reading whose instant is already taken is decided here, in memory and
 * in arrival order, before anything is written, so that the COPY never meets its own unique
 * violation: a re-send of the very same reading (same seq, same values) is a duplicate; anything
 * else at a taken instant is a conflict, quarantined, never silently dropped.
 */

export type Fate = 'store' | 'duplicate' | 'conflict' | 'regression';

export interface Reading {
  deviceId: string;
  seq: number;
  ts: Date;
  values: Partial<Record<MetricName, number>>;
  expect: Expect;
}

/** What occupies an instant: a committed reading, or an earlier one of the same commit. */
export interface Occupant {
  seq: number;
  values: Partial<Record<MetricName, number>>;
}

export const instantKey = (deviceId: string, ts: Date): string => `${deviceId}|${ts.getTime()}`;

/** The same reading: the same seq and the same value for every metric (absent = absent). */
export function sameReading(
  a: { seq: number; values: Partial<Record<MetricName, number>> },
  b: { seq: number; values: Partial<Record<MetricName, number>> },
): boolean {
  if (a.seq !== b.seq) return false;
  for (const m of metricNames) if ((a.values[m] ?? null) !== (b.values[m] ?? null)) return false;
  return true;
}

export interface Decision {
  fate: Fate;
  /** For a duplicate or conflict: what holds the instant. */
  occupant?: Occupant;
}

/**
 * The fate of each reading, in order. `outside(key)` says what holds an instant outside this
 * commit: what is committed, never what another commit is still storing (it may not store it); it is asked only for readings that
 * are not new by construction (`expect !== 'new'`), unless `trustNothing` (after a COPY met a
 * unique violation nobody foresaw: another writer, such as a replay by the table's owner).
 * Earlier readings of the same commit hold their instants for the later ones.
 */
export function decide(
  readings: readonly Reading[],
  outside: (key: string) => Occupant | undefined,
  trustNothing = false,
): Decision[] {
  const here = new Map<string, Occupant>();
  return readings.map((r) => {
    if (r.expect === 'new' && !trustNothing) {
      // Newer than anything of the device before it; later readings of this commit may meet it.
      here.set(instantKey(r.deviceId, r.ts), r);
      return { fate: 'store' };
    }
    const key = instantKey(r.deviceId, r.ts);
    const occupant = here.get(key) ?? outside(key);
    if (!occupant) {
      if (r.expect === 'stored') return { fate: 'regression' };
      here.set(key, r);
      return { fate: 'store' };
    }
    if (sameReading(occupant, r)) return { fate: 'duplicate', occupant };
    return { fate: r.expect === 'stored' ? 'regression' : 'conflict', occupant };
  });
}
