import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeviceLimits, type DeviceLimitsOptions } from './device-limits.ts';

function limits(over: Partial<DeviceLimitsOptions> = {}): {
  l: DeviceLimits;
  clock: { t: number };
} {
  const clock = { t: 0 };
  const l = new DeviceLimits({
    ratePerSecond: 10,
    burst: 5,
    floodCloseMs: 2000,
    connectsPerWindow: 3,
    connectWindowMs: 60_000,
    maxDevices: 100,
    now: () => clock.t,
    ...over,
  });
  return { l, clock };
}

describe('DeviceLimits', () => {
  it('never lets a device be served sooner than burst + rate × elapsed allows, whatever the schedule', () => {
    // Each step: time passes, then the device publishes (connections come and go: the state is per device).
    const schedule = fc.array(
      fc.record({ gapMs: fc.integer({ min: 0, max: 500 }), device: fc.constantFrom('a', 'b') }),
      { minLength: 1, maxLength: 300 },
    );
    fc.assert(
      fc.property(schedule, (steps) => {
        const { l, clock } = limits({ floodCloseMs: 1e12 });
        const servedAt: Record<string, number[]> = { a: [], b: [] };
        for (const s of steps) {
          clock.t += s.gapMs;
          servedAt[s.device]!.push(clock.t + l.take(s.device).waitMs);
        }
        for (const times of Object.values(servedAt)) {
          const sorted = [...times].sort((x, y) => x - y);
          // The k-th message served (1-based) is no earlier than (k - burst) / rate after the first.
          sorted.forEach((t, i) =>
            expect(t - sorted[0]! + 1e-6).toBeGreaterThanOrEqual(((i + 1 - 5) / 10) * 1000),
          );
        }
      }),
    );
  });

  it('calls a device continuously over its rate for longer than floodCloseMs a flood; a pause that lets it recover resets that', () => {
    const { l, clock } = limits();
    for (let i = 0; i < 5; i++) expect(l.take('d')).toMatchObject({ waitMs: 0, flood: false });
    let verdict = l.take('d');
    expect(verdict.waitMs).toBeGreaterThan(0);
    for (let i = 0; i < 40 && !verdict.flood; i++) {
      clock.t += 100; // 10/s attempted, on top of a deficit: never recovers
      verdict = l.take('d');
    }
    expect(verdict.flood).toBe(true);
    expect(verdict.overRateMs).toBeGreaterThan(2000);
    // A thousand queued at once are a flood at once.
    const burst = limits().l;
    let last = burst.take('q');
    for (let i = 0; i < 1000 && !last.flood; i++) last = burst.take('q');
    expect(last.flood).toBe(true);
    clock.t += 60_000; // quiet long enough to refill
    expect(l.take('d')).toMatchObject({ waitMs: 0, overRateMs: 0, flood: false });
  });

  it('admits at most connectsPerWindow CONNECTs per device in any window, and says when to retry', () => {
    const { l, clock } = limits();
    for (let i = 0; i < 3; i++) {
      expect(l.admitConnect('d').ok).toBe(true);
      clock.t += 1000;
    }
    expect(l.admitConnect('d')).toEqual({ ok: false, retryAfterMs: 57_000 });
    expect(l.admitConnect('other').ok).toBe(true);
    clock.t += 57_000;
    expect(l.admitConnect('d').ok).toBe(true);
  });

  it('stays within maxDevices, forgetting refilled devices first', () => {
    const { l, clock } = limits({ maxDevices: 50 });
    l.take('busy');
    for (let i = 0; i < 5; i++) l.take('busy'); // in deficit: worth remembering
    for (let i = 0; i < 500; i++) {
      clock.t += 1;
      l.take(`d${i}`);
      expect(l.size).toBeLessThanOrEqual(50);
    }
  });
});
