import { localStamp, zonedDayStart } from './csv-fns.ts';

/**
 * Local calendar days of the configured zone (DASHBOARD_TIME_ZONE), for daily gas: a day starts
 * at the zone's midnight, whatever its offset that day (a DST change makes a 23 or 25 hour day).
 * Never a fixed offset: Kenya's +3 is one zone among those an operator may configure.
 */

const DAY_MS = 86_400_000;

/** The zone's calendar day (YYYY-MM-DD) holding an instant. */
export const localDay = (instant: Date | number, timeZone: string): string =>
  localStamp(new Date(instant), timeZone).slice(0, 10);

/** The calendar day `n` days after `isoDay` (negative: before); calendar arithmetic, no zone. */
export function addDays(isoDay: string, n: number): string {
  return new Date(Date.parse(`${isoDay}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
}

/** The last `days` local days up to and including the one holding `now`, oldest first. */
export function lastLocalDays(now: Date, days: number, timeZone: string): string[] {
  const today = localDay(now, timeZone);
  return Array.from({ length: days }, (_, i) => addDays(today, i - days + 1));
}

/** The instants [from, to) that a run of local days covers. */
export function localDaysRange(
  days: readonly string[],
  timeZone: string,
): { from: Date; to: Date } {
  return {
    from: zonedDayStart(days[0]!, timeZone),
    to: zonedDayStart(addDays(days[days.length - 1]!, 1), timeZone),
  };
}

/**
 * Biogas per local day (m³) from hourly mean flows (L/min): each hour with data counts as mean ×
 * 60 L, in the day its hour starts in. Days without data read 0; hours outside the days are left
 * out. In zones whose offset is not whole hours (e.g. +5:30) the hour that straddles midnight
 * comes as two pieces (db/timeseries-days.ts hourPieces), each its mean × its `minutes`.
 */
export function gasPerLocalDay(
  hours: readonly { bucket: Date; meanLpm: number; minutes?: number }[],
  days: readonly string[],
  timeZone: string,
): { day: string; m3: number }[] {
  const perDay = new Map(days.map((d) => [d, 0]));
  for (const h of hours) {
    const day = localDay(h.bucket, timeZone);
    const sum = perDay.get(day);
    if (sum !== undefined) perDay.set(day, sum + (h.meanLpm * (h.minutes ?? 60)) / 1000);
  }
  return [...perDay].map(([day, m3]) => ({ day, m3: Math.round(m3 * 100) / 100 }));
}
