import { describe, expect, it } from 'vitest';
import { metricCatalogue, type MetricName } from '../devices/metrics.ts';
import {
  binReadings,
  digesterReadings,
  initialBin,
  initialDigester,
  stepBin,
  stepDigester,
  type BinState,
  type DigesterState,
} from './physics.ts';
import { mulberry32 } from './random.ts';

const HOUR = 3_600_000;
// Midnight in Nairobi (21:00 UTC the day before).
const start = Date.UTC(2026, 10, 1, 21, 0, 0);
const opts = { load: 1, holderLitres: 1500 };
const bin = { capacityKg: 120, collectionHours: [16] };

function runDigester(
  seed: number,
  hours: number,
  load = 1,
): { t: number; s: DigesterState; r: ReturnType<typeof digesterReadings> }[] {
  const rand = mulberry32(seed);
  let s = initialDigester(start, rand);
  const out = [];
  for (let m = 5; m <= hours * 60; m += 5) {
    s = stepDigester(s, start + m * 60_000, rand, { ...opts, load });
    out.push({ t: s.t, s, r: digesterReadings(s, opts, rand) });
  }
  return out;
}

const at = <P extends { t: number }>(series: P[], day: number, hour: number): P =>
  series.find((p) => p.t >= start + (day * 24 + hour) * HOUR)!;

describe('digester physics', () => {
  const week = runDigester(42, 24 * 7);

  it('is reproducible from its seed, and another seed differs', () => {
    expect(runDigester(42, 24).map((p) => p.r)).toEqual(week.slice(0, 24 * 12).map((p) => p.r));
    expect(runDigester(43, 24)[100]!.r).not.toEqual(week[100]!.r);
  });

  it('follows the day: the slurry is warmer in the late afternoon than before dawn', () => {
    for (const day of [3, 4, 5])
      expect(at(week, day, 17).s.temperature).toBeGreaterThan(at(week, day, 5).s.temperature);
  });

  it('makes gas after feeding, with a lag', () => {
    // Lunch feed at 13:30: production an hour later is above what it was just before.
    for (const day of [2, 3])
      expect(at(week, day, 14.5).s.production).toBeGreaterThan(at(week, day, 13.25).s.production);
  });

  it('builds pressure until the kitchen cooks, and cooking draws it down', () => {
    for (const day of [2, 3]) {
      expect(at(week, day, 10.9).s.stored).toBeGreaterThan(at(week, day, 7.6).s.stored); // between breakfast and lunch
      expect(at(week, day, 12.9).s.stored).toBeLessThan(at(week, day, 11).s.stored); // lunch cooking
    }
  });

  it('acidifies when overfed', () => {
    const overfed = runDigester(42, 24 * 7, 3);
    expect(overfed.at(-1)!.s.ph).toBeLessThan(week.at(-1)!.s.ph - 0.2);
  });

  it('reports only values inside the catalogue ranges', () => {
    for (const { r } of [...week, ...runDigester(7, 24 * 7, 3)]) {
      for (const [m, v] of Object.entries(r)) {
        const spec = metricCatalogue[m as MetricName];
        expect(v, m).toBeGreaterThanOrEqual(spec.min);
        expect(v, m).toBeLessThanOrEqual(spec.max);
      }
    }
  });
});

describe('collection point physics', () => {
  it('fills through the day and is emptied at collection time (a weight drop)', () => {
    const rand = mulberry32(5);
    let s: BinState = initialBin(start, rand);
    const series: { t: number; s: BinState; r: ReturnType<typeof binReadings> }[] = [];
    for (let m = 1; m <= 48 * 60; m++) {
      s = stepBin(s, start + m * 60_000, rand, bin);
      series.push({ t: s.t, s, r: binReadings(s, bin, rand) });
    }
    for (const day of [0, 1]) {
      expect(at(series, day, 15.9).s.weight).toBeGreaterThan(at(series, day, 6).s.weight + 10);
      expect(at(series, day, 16.1).s.weight).toBeLessThan(3);
    }
    expect(series.some((p) => p.r.lid_open)).toBe(true);
    expect(series.every((p) => p.r.fill_level_pct >= 0 && p.r.fill_level_pct <= 100)).toBe(true);
  });
});
