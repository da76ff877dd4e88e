import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { metricNames } from '../devices/metrics.ts';
import { acceptReading, checkWithZod, parsePayload } from './payload-fns.ts';

const limits = { maxBatch: 3, maxFutureMs: 300_000, backfillMs: 7 * 86_400_000 };
const now = Date.parse('2026-11-22T12:00:00Z');
const parse = (payload: unknown, kind: 'biodigester' | 'collection_point' = 'biodigester') =>
  parsePayload(
    Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)),
    kind,
    limits,
    now,
  );
const codes = (p: ReturnType<typeof parse>) =>
  p.bad.flatMap((b) => b.reasons.map((r) => `${r.code}@${r.field}`));

describe('parsePayload', () => {
  it('accepts a reading, stores booleans as 1/0', () => {
    const p = parse({
      seq: 1,
      ts: '2026-11-22T11:59:00Z',
      readings: { temperature_c: 36.5, ph: 7.1 },
    });
    expect(p).toEqual({
      good: [
        { seq: 1, ts: new Date('2026-11-22T11:59:00Z'), values: { temperature_c: 36.5, ph: 7.1 } },
      ],
      bad: [],
    });
    expect(
      parse(
        { seq: 2, ts: '2026-11-22T14:59:00+03:00', readings: { lid_open: true } },
        'collection_point',
      ).good[0]!.values,
    ).toEqual({ lid_open: 1 });
  });

  it.each([
    ['{"seq":', 'MALFORMED_JSON@'],
    [{ seq: -1, ts: '2026-11-22T11:59:00Z', readings: { ph: 7 } }, 'SCHEMA@seq'],
    [{ seq: 1, ts: '22/11/2026', readings: { ph: 7 } }, 'SCHEMA@ts'],
    [
      { seq: 1, ts: '2026-11-22T11:59:00Z', readings: { pressure_psi: 7 } },
      'UNKNOWN_METRIC@readings.pressure_psi',
    ],
    [
      { seq: 1, ts: '2026-11-22T11:59:00Z', readings: { fill_level_pct: 50 } },
      'WRONG_KIND@readings.fill_level_pct',
    ],
    [{ seq: 1, ts: '2026-11-22T11:59:00Z', readings: { ph: '7' } }, 'WRONG_TYPE@readings.ph'],
    [{ seq: 1, ts: '2026-11-22T11:59:00Z', readings: { ph: 15 } }, 'OUT_OF_RANGE@readings.ph'],
    [{ seq: 1, ts: '2026-11-22T12:10:00Z', readings: { ph: 7 } }, 'TS_FUTURE@ts'],
    [{ seq: 1, ts: '2026-11-01T12:00:00Z', readings: { ph: 7 } }, 'TS_TOO_OLD@ts'],
    [{ batch: [1, 2, 3, 4] }, 'BATCH_TOO_LARGE@batch'],
    [
      '{"seq":1,"ts":"2026-11-22T11:59:00Z","readings":{"ph":7,"__proto__":1}}',
      'UNKNOWN_METRIC@readings.__proto__',
    ],
  ])('rejects %j with %s', (payload, expected) => {
    const p = parse(payload);
    expect(p.good).toEqual([]);
    expect(codes(p)).toContain(expected);
  });

  it('judges each reading of a batch alone', () => {
    const p = parse({
      batch: [
        { seq: 1, ts: '2026-11-22T11:00:00Z', readings: { ph: 7 } },
        { seq: 2, ts: '2026-11-22T11:01:00Z', readings: { ph: 99 } },
      ],
    });
    expect(p.good.map((g) => g.seq)).toEqual([1]);
    expect(p.bad).toEqual([
      {
        index: 1,
        seq: 2,
        reasons: [expect.objectContaining({ code: 'OUT_OF_RANGE', field: 'batch[1].readings.ph' })],
      },
    ]);
  });

  it('accepts SenML (RFC 8428), grouping records by time', () => {
    const bt = now / 1000 - 60;
    const p = parse([
      { bn: 'urn:dev:bd-1:', bt, n: 'temperature_c', v: 35 },
      { n: 'ph', v: 7.2 },
      { n: 'ph', t: 30, v: 7.3 },
    ]);
    expect(p.bad).toEqual([]);
    expect(p.good).toEqual([
      { seq: bt * 1000, ts: new Date(bt * 1000), values: { temperature_c: 35, ph: 7.2 } },
      { seq: (bt + 30) * 1000, ts: new Date((bt + 30) * 1000), values: { ph: 7.3 } },
    ]);
  });
});

describe('the fast path and the zod path agree', () => {
  // Readings near the limits of every rule, valid and not: the fast path must accept exactly what
  // the zod path accepts, with the same output, and refuse the rest (zod then says why).
  const metric = fc.oneof(
    fc.constantFrom(...metricNames),
    fc.constantFrom('pressure_psi', '__proto__', 'constructor', ''),
    fc.string({ maxLength: 8 }),
  );
  const value = fc.oneof(
    fc.double({ min: -200, max: 11_000, noNaN: true }),
    fc.integer({ min: -200, max: 11_000 }),
    fc.constantFrom(0, -0, 1, 14, 14.000001, -150, 100, 100.5, 5000, 10_000, Number.NaN, Infinity),
    fc.boolean(),
    fc.constantFrom('7', null, [], {}),
  );
  const instant = fc.integer({ min: now - 8 * 86_400_000, max: now + 600_000 });
  const ts = fc.oneof(
    instant.map((ms) => new Date(ms).toISOString()),
    instant.map((ms) =>
      new Date(ms).toISOString().replace('.000Z', 'Z').replace('T', 't').replace('Z', 'z'),
    ),
    instant.map((ms) => `${new Date(ms + 3 * 3_600_000).toISOString().slice(0, 19)}+03:00`),
    instant.map((ms) => `${new Date(ms).toISOString().slice(0, 19)}.123456789Z`),
    fc.constantFrom(
      '2026-11-22T11:59:00',
      '2026-13-22T11:59:00Z',
      '2026-11-22 11:59:00Z',
      '22/11/2026',
      '',
    ),
    fc.integer(),
  );
  const seq = fc.oneof(
    fc.nat(),
    fc.integer({ min: -3, max: 3 }),
    fc.constantFrom(-0, 0.5, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, Infinity),
    fc.constantFrom('1', null),
  );
  const reading = fc.record(
    {
      seq,
      ts,
      readings: fc.oneof(
        fc.dictionary(metric, value, { maxKeys: 5 }),
        fc.constantFrom({}, null, [], 'x'),
      ),
      extra: fc.anything(),
    },
    { requiredKeys: [] },
  );
  const kind = fc.constantFrom<'biodigester' | 'collection_point'>(
    'biodigester',
    'collection_point',
  );

  it('on generated readings', () => {
    fc.assert(
      fc.property(reading, kind, (raw, k) => {
        const slow = checkWithZod(raw, '', k, limits, now);
        expect(acceptReading(raw, k, limits, now)).toEqual(Array.isArray(slow) ? undefined : slow);
      }),
      { numRuns: 20_000 },
    );
  });
});
