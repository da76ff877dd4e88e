import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createMrvAccumulator, FLOW, METHANE, PRESSURE, TEMPERATURE } from './mrv-fns.ts';
import {
  compareReadings,
  csvHeader,
  csvRow,
  encodeReading,
  isoToMicros,
  microsToIso,
  parseCsvHeader,
  parseCsvRow,
  type RawReading,
} from './mrv-encoding.ts';
import { DEFAULT_MRV_PARAMS, resolveParams } from './mrv-params.ts';

const UNIT = '6f1c1e0a-93a4-4c55-9d0e-2d1f0a7b1c11';
const T0 = isoToMicros('2026-10-01T00:00:00Z');
const MIN = 60_000_000n;
const at = (minute: number, values: Record<string, number>, deviceId = 'dig-001'): RawReading => ({
  deviceId,
  unitId: UNIT,
  tsMicros: T0 + BigInt(minute) * MIN,
  seq: BigInt(minute),
  values,
});

describe('MRV quantities', () => {
  it("integrates flow per interval, normalises with the reading's own temperature and pressure, never across a gap", () => {
    const acc = createMrvAccumulator(
      { startMicros: T0, endMicros: T0 + 10n * MIN },
      DEFAULT_MRV_PARAMS,
      [],
    );
    acc.add(at(0, { [FLOW]: 10, [METHANE]: 60, [TEMPERATURE]: 0, [PRESSURE]: 0 }));
    acc.add(at(1, { [FLOW]: 20, [METHANE]: 50 }));
    // minutes 2..7 missing: a gap, zero production
    acc.add(at(8, { [FLOW]: 30, [METHANE]: 40, [TEMPERATURE]: 0, [PRESSURE]: 101.325 }));
    const r = acc.finish();
    const assumedFactor = 273.15 / (273.15 + 35);
    // 10 L/min for 1 min at normal conditions; 20 L/min for 1 min assumed; 30 L/min for 1 min at 2 atm; then minute 9 is a gap.
    expect(r.quantities.biogasM3).toBeCloseTo(0.06, 12);
    expect(r.quantities.biogasNm3).toBeCloseTo(0.01 + 0.02 * assumedFactor + 0.03 * 2, 12);
    expect(r.quantities.methaneFraction).toBeCloseTo(0.5, 12);
    expect(r.quantities.methaneKg).toBeCloseTo(r.quantities.biogasNm3 * 0.5 * 0.7168, 12);
    expect(r.quantities.energyMj).toBeCloseTo(r.quantities.methaneKg * 50, 9);
    expect(r.estimate.totalKgCo2e).toBeCloseTo(r.quantities.energyMj * 0.0631, 12);
    expect(r.quantities.normalisation).toEqual({
      measuredTemperature: 2,
      assumedTemperature: 1,
      measuredPressure: 2,
      assumedPressure: 1,
    });
    expect(r.completeness.expectedIntervals).toBe(10);
    expect(r.completeness.metrics[FLOW]).toEqual({
      received: 3,
      missing: 7,
      ratio: 0.3,
      gaps: [
        { start: '2026-10-01T00:02:00.000000Z', end: '2026-10-01T00:08:00.000000Z', intervals: 6 },
        { start: '2026-10-01T00:09:00.000000Z', end: '2026-10-01T00:10:00.000000Z', intervals: 1 },
      ],
    });
    expect(r.completeness.metrics[PRESSURE].received).toBe(2);
  });

  it('excludes and lists values under a failed calibration, and unmetered values when calibration is required', () => {
    const params = resolveParams({ requireCalibration: true });
    const cal = [
      {
        deviceId: 'dig-001',
        metric: FLOW,
        validFromMicros: T0,
        validToMicros: T0 + 5n * MIN,
        result: 'pass' as const,
      },
      {
        deviceId: 'dig-001',
        metric: FLOW,
        validFromMicros: T0 + 2n * MIN,
        validToMicros: T0 + 4n * MIN,
        result: 'fail' as const,
      },
      {
        deviceId: 'dig-001',
        metric: METHANE,
        validFromMicros: T0,
        validToMicros: null,
        result: 'pass' as const,
      },
    ];
    const acc = createMrvAccumulator({ startMicros: T0, endMicros: T0 + 6n * MIN }, params, cal);
    for (let m = 0; m < 6; m += 1) acc.add(at(m, { [FLOW]: 10, [METHANE]: 50 }));
    const r = acc.finish();
    expect(r.excluded).toEqual([
      {
        deviceId: 'dig-001',
        metric: FLOW,
        reason: 'calibration_failed',
        first: '2026-10-01T00:02:00.000000Z',
        last: '2026-10-01T00:03:00.000000Z',
        count: 2,
      },
      {
        deviceId: 'dig-001',
        metric: FLOW,
        reason: 'not_calibrated',
        first: '2026-10-01T00:05:00.000000Z',
        last: '2026-10-01T00:05:00.000000Z',
        count: 1,
      },
    ]);
    expect(r.quantities.biogasM3).toBeCloseTo(0.03, 12);
    expect(r.completeness.metrics[FLOW].received).toBe(3);
    expect(r.completeness.metrics[METHANE].received).toBe(6);
  });

  it('a reading stands for at most one interval, and only until the next one when they come faster', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 3599 }), { maxLength: 200 }),
        (seconds) => {
          const sorted = [...seconds].sort((a, b) => a - b);
          const acc = createMrvAccumulator(
            { startMicros: T0, endMicros: T0 + 3_600_000_000n },
            DEFAULT_MRV_PARAMS,
            [],
          );
          for (const s of sorted)
            acc.add({
              deviceId: 'dig-001',
              unitId: UNIT,
              tsMicros: T0 + BigInt(s) * 1_000_000n,
              seq: BigInt(s),
              values: { [FLOW]: 60 },
            });
          const r = acc.finish();
          // Independent: the union of [t, min(t+60, next t, end)) in seconds, at 1 L/s.
          let covered = 0;
          sorted.forEach((s, i) => (covered += Math.min(60, (sorted[i + 1] ?? 3600) - s)));
          expect(r.quantities.flowSecondsCovered).toBe(covered);
          expect(r.quantities.biogasM3).toBeCloseTo(covered / 1000, 9);
          expect(r.completeness.metrics[FLOW].received).toBe(
            new Set(sorted.map((s) => Math.floor(s / 60))).size,
          );
        },
      ),
    );
  });
});

describe('canonical encoding and CSV', () => {
  const readingArb = fc.record({
    deviceId: fc.stringMatching(/^[a-z0-9][a-z0-9_-]{2,20}$/),
    unitId: fc.uuid(),
    tsMicros: fc.bigInt({ min: 0n, max: 4_102_444_800_000_000n }),
    seq: fc.bigInt({ min: 0n, max: 2n ** 62n }),
    values: fc.dictionary(
      fc.constantFrom(FLOW, METHANE, TEMPERATURE, PRESSURE, 'ph', 'battery_v'),
      fc.double({ noNaN: true }),
      { maxKeys: 6 },
    ),
  });

  it('the CSV a verifier reads gives back exactly the leaf the report hashed', () => {
    const metrics = [FLOW, METHANE, TEMPERATURE, PRESSURE, 'ph', 'battery_v'];
    fc.assert(
      fc.property(readingArb, (r) => {
        const header = parseCsvHeader(csvHeader(metrics));
        const back = parseCsvRow(header, csvRow(r, metrics), 2);
        expect(encodeReading(back).equals(encodeReading(r))).toBe(true);
        expect(isoToMicros(microsToIso(r.tsMicros))).toBe(r.tsMicros);
      }),
    );
  });

  it('different readings never share an encoding (the metric order does not matter, any change does)', () => {
    fc.assert(
      fc.property(readingArb, readingArb, (a, b) => {
        const same =
          a.deviceId === b.deviceId &&
          a.unitId === b.unitId &&
          a.tsMicros === b.tsMicros &&
          a.seq === b.seq &&
          Object.keys(a.values).length === Object.keys(b.values).length &&
          Object.entries(a.values).every(([k, v]) => Object.is(b.values[k], v));
        expect(encodeReading(a).equals(encodeReading(b))).toBe(same);
        const reversed = { ...a, values: Object.fromEntries(Object.entries(a.values).reverse()) };
        expect(encodeReading(reversed).equals(encodeReading(a))).toBe(true);
        expect(compareReadings(a, a)).toBe(0);
      }),
    );
  });

  it('refuses malformed CSV with the line number', () => {
    const header = parseCsvHeader(csvHeader([FLOW]));
    expect(() =>
      parseCsvRow(
        header,
        'dig-001,6f1c1e0a-93a4-4c55-9d0e-2d1f0a7b1c11,2026-10-01T00:00:00Z,1,abc',
        7,
      ),
    ).toThrow(/line 7: gas_flow_lpm/);
    expect(() => parseCsvRow(header, 'dig-001,x,2026-10-01T00:00:00Z,1', 8)).toThrow(/line 8/);
    expect(() => parseCsvHeader('ts,device_id')).toThrow(/header/);
  });
});

describe('site parameters', () => {
  it('override defaults with a value and a source, and refuse unknown keys and implausible values', () => {
    const p = resolveParams(
      { ambientPressureKpa: 82, gwpCh4: { value: 29.8, source: 'IPCC AR6, fossil methane' } },
      'site Kiambu',
    );
    expect(p.ambientPressureKpa).toEqual({
      value: 82,
      source: expect.stringMatching(/^set by site Kiambu, no source given/),
    });
    expect(p.gwpCh4).toEqual({ value: 29.8, source: 'IPCC AR6, fossil methane' });
    expect(p.methaneLhvMjPerKg).toEqual(DEFAULT_MRV_PARAMS.methaneLhvMjPerKg);
    expect(() => resolveParams({ gwp: 27 })).toThrow();
    expect(() => resolveParams({ ambientPressureKpa: 10 })).toThrow();
    expect(() => resolveParams({ methaneVentedFractionBaseline: 1.5 })).toThrow();
    expect(() => resolveParams({ requireCalibration: 'yes' })).toThrow();
  });
});
