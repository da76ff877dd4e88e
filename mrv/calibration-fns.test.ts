import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { versionAt } from '../device-config/config-fns.ts';
import { createCalibrationCounter, type DeviceCalibrationSpan } from './calibration-fns.ts';

/**
 * Calibration versions of a report: over generated histories (versions applied before, inside
 * and after the period) and readings in leaf order, every reading is counted under the version
 * device-config's versionAt says produced it (null before any), each span is clipped to the
 * period, and the counts of a device add up to its readings.
 */

const START = Date.UTC(2026, 9, 1);
const END = START + 10 * 86_400_000;
const us = (ms: number) => BigInt(ms) * 1000n;

const history = fc
  .uniqueArray(fc.integer({ min: START - 5 * 86_400_000, max: END + 86_400_000 }), {
    maxLength: 6,
  })
  .map((ts) => {
    const sorted = [...ts].sort((a, b) => a - b);
    return sorted.map((t, i): DeviceCalibrationSpan => ({
      version: i + 1,
      calibration: { gas_flow_lpm: { offset: i, gain: 1 + i / 10 } },
      from: new Date(t),
      until: i + 1 < sorted.length ? new Date(sorted[i + 1]!) : null,
    }));
  });

describe('calibration versions', () => {
  it('attributes every reading to the version in force at its instant, spans clipped to the period', () => {
    fc.assert(
      fc.property(
        fc.array(
          // Readings anywhere, and exactly at the instants a version was applied (boundaries).
          history.chain((spans) =>
            fc.record({
              spans: fc.constant(spans),
              readings: fc.uniqueArray(
                fc.oneof(
                  fc.integer({ min: START, max: END - 1 }),
                  fc
                    .constantFrom(START, END - 1, ...spans.map((x) => x.from.getTime()))
                    .filter((t) => t >= START && t < END),
                ),
                { maxLength: 40 },
              ),
            }),
          ),
          { minLength: 1, maxLength: 3 },
        ),
        (devices) => {
          const ids = devices.map((_, i) => `dev-${i}`);
          const counter = createCalibrationCounter(
            { startMicros: us(START), endMicros: us(END) },
            new Map(devices.map((d, i) => [ids[i]!, d.spans])),
          );
          for (const [i, d] of devices.entries())
            for (const ts of [...d.readings].sort((a, b) => a - b))
              counter.add({ deviceId: ids[i]!, tsMicros: us(ts) });
          const uses = counter.finish();
          for (const [i, d] of devices.entries()) {
            const mine = uses.filter((u) => u.deviceId === ids[i]);
            const expected = new Map<number | null, number>();
            for (const ts of d.readings) {
              const v = versionAt(d.spans, new Date(ts)) ?? null;
              expected.set(v, (expected.get(v) ?? 0) + 1);
            }
            for (const [v, n] of expected)
              expect(mine.find((u) => u.version === v)?.readings).toBe(n);
            expect(mine.reduce((a, u) => a + u.readings, 0)).toBe(d.readings.length);
            // Spans tile the period, in time order, without overlap.
            expect(mine[0]!.from).toBe('2026-10-01T00:00:00.000000Z');
            expect(mine[mine.length - 1]!.to).toBe('2026-10-11T00:00:00.000000Z');
            for (let k = 1; k < mine.length; k += 1) expect(mine[k]!.from).toBe(mine[k - 1]!.to);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
