import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addDays, gasPerLocalDay, lastLocalDays, localDaysRange } from './gas-day-fns.ts';

/**
 * Daily gas counts the configured zone's calendar days, whatever its offset and on the days its
 * offset changes. The reference is Intl's own calendar date of each instant in the zone.
 */

const zones = [
  'Africa/Nairobi',
  'Europe/London',
  'America/New_York',
  'Asia/Kolkata',
  'Australia/Lord_Howe',
  'Pacific/Chatham',
  'America/St_Johns',
  'UTC',
];
const HOUR = 3_600_000;
// Around the 2026 DST changes of London (29 Mar, 25 Oct) and New York (8 Mar, 1 Nov), and beyond.
const instants = fc.oneof(
  fc.integer({ min: Date.UTC(2026, 2, 25), max: Date.UTC(2026, 3, 2) }),
  fc.integer({ min: Date.UTC(2026, 9, 22), max: Date.UTC(2026, 10, 4) }),
  fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2030, 0, 1) }),
);

const intlDay = (ms: number, timeZone: string) =>
  new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(new Date(ms));

describe('daily gas in the configured zone', () => {
  it('counts each hour in the local day Intl gives its start, over the last n local days, losing none inside them', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        instants,
        fc.integer({ min: 1, max: 10 }),
        fc.array(
          fc.tuple(fc.integer({ min: -300, max: 20 }), fc.double({ min: 0, max: 50, noNaN: true })),
          {
            maxLength: 60,
          },
        ),
        (timeZone, now, n, raw) => {
          const days = lastLocalDays(new Date(now), n, timeZone);
          // n consecutive calendar days ending with the zone's today.
          expect(days).toHaveLength(n);
          expect(days[n - 1]).toBe(intlDay(now, timeZone));
          days.forEach((d, i) => i > 0 && expect(d).toBe(addDays(days[i - 1]!, 1)));
          // The range is exactly those days: its first instant is in the first, its last in the last.
          const { from, to } = localDaysRange(days, timeZone);
          expect(intlDay(from.getTime(), timeZone)).toBe(days[0]);
          expect(intlDay(from.getTime() - 1, timeZone)).toBe(addDays(days[0]!, -1));
          expect(intlDay(to.getTime() - 1, timeZone)).toBe(days[n - 1]);
          expect(intlDay(to.getTime(), timeZone)).toBe(addDays(days[n - 1]!, 1));
          const hourStart = Math.floor(now / HOUR) * HOUR;
          const hours = raw.map(([k, lpm]) => ({
            bucket: new Date(hourStart + k * HOUR),
            meanLpm: lpm,
          }));
          const expected = new Map(days.map((d) => [d, 0]));
          for (const h of hours) {
            const d = intlDay(h.bucket.getTime(), timeZone);
            if (expected.has(d)) expected.set(d, expected.get(d)! + (h.meanLpm * 60) / 1000);
          }
          const got = gasPerLocalDay(hours, days, timeZone);
          expect(got.map((g) => g.day)).toEqual(days);
          for (const g of got) expect(g.m3).toBeCloseTo(expected.get(g.day)!, 1);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('London on the day clocks go forward has 23 hours, and the day back 25, each counted whole', () => {
    const spring = localDaysRange(['2026-03-29'], 'Europe/London');
    expect(spring.to.getTime() - spring.from.getTime()).toBe(23 * HOUR);
    const autumn = localDaysRange(['2026-10-25'], 'Europe/London');
    expect(autumn.to.getTime() - autumn.from.getTime()).toBe(25 * HOUR);
    const hours = Array.from({ length: 25 }, (_, i) => ({
      bucket: new Date(autumn.from.getTime() + i * HOUR),
      meanLpm: 1000 / 60,
    }));
    expect(gasPerLocalDay(hours, ['2026-10-25'], 'Europe/London')).toEqual([
      { day: '2026-10-25', m3: 25 },
    ]);
    // Midnight in London in summer is 23:00 UTC the day before: that hour is the new day's.
    expect(
      gasPerLocalDay(
        [{ bucket: new Date('2026-07-01T23:00:00Z'), meanLpm: 1000 / 60 }],
        ['2026-07-01', '2026-07-02'],
        'Europe/London',
      ),
    ).toEqual([
      { day: '2026-07-01', m3: 0 },
      { day: '2026-07-02', m3: 1 },
    ]);
  });
});
