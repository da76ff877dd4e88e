import { describe, expect, it } from 'vitest';
import { parsePayload } from './payload-fns.ts';

const limits = { maxBatch: 3, maxFutureMs: 300_000, backfillMs: 7 * 86_400_000 };
const now = Date.parse('2026-11-22T12:00:00Z');
const parse = (payload: unknown, kind: 'biodigester' | 'collection_point' = 'biodigester') =>
  parsePayload(Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)), kind, limits, now);
const codes = (p: ReturnType<typeof parse>) => p.bad.flatMap((b) => b.reasons.map((r) => `${r.code}@${r.field}`));

describe('parsePayload', () => {
  it('accepts a reading, stores booleans as 1/0', () => {
    const p = parse({ seq: 1, ts: '2026-11-22T11:59:00Z', readings: { temperature_c: 36.5, ph: 7.1 } });
    expect(p).toEqual({ good: [{ seq: 1, ts: new Date('2026-11-22T11:59:00Z'), values: { temperature_c: 36.5, ph: 7.1 } }], bad: [] });
    expect(parse({ seq: 2, ts: '2026-11-22T14:59:00+03:00', readings: { lid_open: true } }, 'collection_point').good[0]!.values).toEqual({ lid_open: 1 });
  });

  it.each([
    ['{"seq":', 'MALFORMED_JSON@'],
    [{ seq: -1, ts: '2026-11-22T11:59:00Z', readings: { ph: 7 } }, 'SCHEMA@seq'],
    [{ seq: 1, ts: '22/11/2026', readings: { ph: 7 } }, 'SCHEMA@ts'],
    [{ seq: 1, ts: '2026-11-22T11:59:00Z', readings: { pressure_psi: 7 } }, 'UNKNOWN_METRIC@readings.pressure_psi'],
    [{ seq: 1, ts: '2026-11-22T11:59:00Z', readings: { fill_level_pct: 50 } }, 'WRONG_KIND@readings.fill_level_pct'],
    [{ seq: 1, ts: '2026-11-22T11:59:00Z', readings: { ph: '7' } }, 'WRONG_TYPE@readings.ph'],
    [{ seq: 1, ts: '2026-11-22T11:59:00Z', readings: { ph: 15 } }, 'OUT_OF_RANGE@readings.ph'],
    [{ seq: 1, ts: '2026-11-22T12:10:00Z', readings: { ph: 7 } }, 'TS_FUTURE@ts'],
    [{ seq: 1, ts: '2026-11-01T12:00:00Z', readings: { ph: 7 } }, 'TS_TOO_OLD@ts'],
    [{ batch: [1, 2, 3, 4] }, 'BATCH_TOO_LARGE@batch'],
  ])('rejects %j with %s', (payload, expected) => {
    const p = parse(payload);
    expect(p.good).toEqual([]);
    expect(codes(p)).toContain(expected);
  });

  it('judges each reading of a batch alone', () => {
    const p = parse({ batch: [{ seq: 1, ts: '2026-11-22T11:00:00Z', readings: { ph: 7 } }, { seq: 2, ts: '2026-11-22T11:01:00Z', readings: { ph: 99 } }] });
    expect(p.good.map((g) => g.seq)).toEqual([1]);
    expect(p.bad).toEqual([{ index: 1, seq: 2, reasons: [expect.objectContaining({ code: 'OUT_OF_RANGE', field: 'batch[1].readings.ph' })] }]);
  });

  it('accepts SenML (RFC 8428), grouping records by time', () => {
    const bt = now / 1000 - 60;
    const p = parse([{ bn: 'urn:dev:bd-1:', bt, n: 'temperature_c', v: 35 }, { n: 'ph', v: 7.2 }, { n: 'ph', t: 30, v: 7.3 }]);
    expect(p.bad).toEqual([]);
    expect(p.good).toEqual([
      { seq: bt * 1000, ts: new Date(bt * 1000), values: { temperature_c: 35, ph: 7.2 } },
      { seq: (bt + 30) * 1000, ts: new Date((bt + 30) * 1000), values: { ph: 7.3 } },
    ]);
  });
});
