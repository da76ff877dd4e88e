import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isStorableText, parseDeviceJson } from '../broker/device-json.ts';
import { deep, render, telemetryJson, withRawBytes, type Fresh } from '../test/hostile-input.ts';
import { reasonCodes } from './ingest-errors.ts';
import { parsePayload, type ParsedPayload } from './payload-fns.ts';

/** `npm run fuzz -- --runs N --seed S` runs 25×N here (test/fuzz-runner.ts); `npm test` a fixed 3,000. */
const runs = process.env.FUZZ_RUNS ? 25 * Number(process.env.FUZZ_RUNS) : 3000;
const seed = Number(process.env.FUZZ_SEED ?? 16);
const limits = { maxBatch: 5, maxFutureMs: 300_000, backfillMs: 7 * 86_400_000 };
const now = Date.parse('2026-11-22T12:00:00Z');
const fresh = (): Fresh => {
  let t = now - 3_600_000,
    s = 0;
  return { time: () => (t += 1000), seq: () => ++s };
};
const parse = (text: string | Buffer): ParsedPayload =>
  parsePayload(Buffer.isBuffer(text) ? text : Buffer.from(text), 'biodigester', limits, now);
const codes = (p: ParsedPayload): string[] =>
  p.bad.flatMap((b) => b.reasons.map((r) => `${r.code}@${r.field}`));

/**
 * The totality of parsePayload: for every byte string, one outcome per reading and nothing the
 * database or a Date cannot hold. Every good reading has a real date, a safe seq and finite
 * values; every bad one has reasons with a known code in text PostgreSQL stores (no U+0000, no
 * lone surrogate) and a seq the quarantine's int8 column holds, or none.
 */
function assertTotal(p: ParsedPayload): void {
  expect(p.good.length + p.bad.length).toBeGreaterThan(0);
  for (const g of p.good) {
    expect(Number.isFinite(g.ts.getTime())).toBe(true);
    expect(Number.isSafeInteger(g.seq) && g.seq >= 0).toBe(true);
    for (const v of Object.values(g.values))
      expect(Number.isFinite(v) && !Object.is(v, -0)).toBe(true);
    expect(Object.keys(g.values).length).toBeGreaterThan(0);
  }
  for (const b of p.bad) {
    expect(b.seq === undefined || Number.isSafeInteger(b.seq)).toBe(true);
    expect(b.index === undefined || Number.isSafeInteger(b.index)).toBe(true);
    expect(b.reasons.length).toBeGreaterThan(0);
    expect(b.reasons.length).toBeLessThanOrEqual(16);
    for (const r of b.reasons) {
      expect(reasonCodes).toContain(r.code);
      expect(isStorableText(r.field) && isStorableText(r.message), JSON.stringify(r)).toBe(true);
      expect(r.field.length + r.message.length).toBeLessThan(1000);
    }
  }
}

describe('parsePayload is total', () => {
  it(`on ${runs} generated hostile JSON payloads, SenML packs, batches and raw bytes (seed ${seed})`, () => {
    let n = 0;
    fc.assert(
      fc.property(withRawBytes(telemetryJson, fresh), (payload) => {
        n++;
        assertTotal(parse(payload()));
      }),
      { numRuns: runs, seed },
    );
    expect(n).toBe(runs);
  });

  it.each([
    // The defect of issue 16: bt + t beyond any Date threw a RangeError out of the parser.
    ['[{"bt":1e300,"n":"ph","v":7}]', 'TS_UNREPRESENTABLE@[0].t'],
    [
      '[{"bt":1.7976931348623157e308,"n":"ph","v":7,"t":1.7976931348623157e308}]',
      'TS_UNREPRESENTABLE@[0].t',
    ],
    ['[{"bt":8640000000001,"n":"ph","v":7}]', 'TS_UNREPRESENTABLE@[0].t'],
    ['[{"bt":1e400,"n":"ph","v":7}]', 'NUMBER_UNREPRESENTABLE@[0].bt'],
    ['[{"n":"ph","v":1e400}]', 'NUMBER_UNREPRESENTABLE@[0].v'],
    ['[]', 'SCHEMA@'],
    ['[{"bt":1}]', 'SCHEMA@'],
    ['{"seq":1e400,"ts":"2026-11-22T11:59:00Z","readings":{"ph":7}}', 'NUMBER_UNREPRESENTABLE@seq'],
    [
      '{"seq":9007199254740993,"ts":"2026-11-22T11:59:00Z","readings":{"ph":7}}',
      'NUMBER_UNREPRESENTABLE@seq',
    ],
    [
      '{"seq":1,"ts":"2026-11-22T11:59:00Z","readings":{"ph":-1e400}}',
      'NUMBER_UNREPRESENTABLE@readings.ph',
    ],
    ['{"seq":1,"ts":"2026-11-22T11:59:00Z","readings":{"ph":7,"ph":9}}', 'DUPLICATE_KEY@'],
    ['{"seq":1,"seq":2,"ts":"2026-11-22T11:59:00Z","readings":{"ph":7}}', 'DUPLICATE_KEY@'],
    [
      '{"batch":[{"seq":1,"ts":"2026-11-22T11:59:00Z","readings":{"ph":7,"\\u0070\\u0068":9}}]}',
      'DUPLICATE_KEY@',
    ],
    [`${'['.repeat(33)}${']'.repeat(33)}`, 'NESTING_TOO_DEEP@'],
    [`${'{"a":'.repeat(40_000)}1${'}'.repeat(40_000)}`, 'NESTING_TOO_DEEP@'],
    [
      '{"seq":1,"ts":"2026-11-22T11:59:00Z","readings":{"ph":7},"x:y":"1:2","x:y":"3:4"}',
      'DUPLICATE_KEY@',
    ],
    [
      '{"seq":1,"ts":"2026-11-22T11:59:00Z","readings":{"ph":7},"a":"\\u003a","a":1}',
      'DUPLICATE_KEY@',
    ],
    [
      '{"seq":1,"ts":"2026-11-22T11:59:00Z","readings":{"ph":7},"x\\u003a":"\\u003a","x\\u003a":1}',
      'DUPLICATE_KEY@',
    ],
    [Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 'MALFORMED_JSON@'],
    [
      '{"seq":1,"ts":"2026-11-22T11:59:00Z","readings":{"ph\\u0000":7}}',
      'UNKNOWN_METRIC@readings.ph\ufffd',
    ],
    [
      '{"seq":1,"ts":"2026-11-22T11:59:00Z","readings":{"\\ud800":7}}',
      'UNKNOWN_METRIC@readings.\ufffd',
    ],
  ])('refuses %s with %s', (payload, expected) => {
    const p = parse(payload);
    assertTotal(p);
    expect(p.good).toEqual([]);
    expect(codes(p)).toContain(expected);
  });

  it('says why JSON with a NUL is malformed in text the database stores', () => {
    const p = parse('{"seq":\u0000}');
    assertTotal(p);
    expect(p.bad[0]!.reasons[0]).toMatchObject({
      code: 'MALFORMED_JSON',
      message: expect.stringContaining('\ufffd'),
    });
  });

  it('keeps a seq only when int8 holds it as sent', () => {
    const bad = (seq: string) =>
      parse(`{"seq":${seq},"ts":"2026-11-22T11:59:00Z","readings":{"ph":99}}`).bad[0]!.seq;
    expect(bad('12')).toBe(12);
    expect(bad('1.5')).toBeUndefined();
    expect(bad('1e20')).toBeUndefined();
    expect(bad('1e400')).toBeUndefined();
    expect(Object.is(bad('-0'), 0)).toBe(true);
  });

  it('stores -0 as 0', () => {
    const p = parse('{"seq":-0,"ts":"2026-11-22T11:59:00Z","readings":{"temperature_c":-0}}');
    expect(p.bad).toEqual([]);
    expect(Object.is(p.good[0]!.values.temperature_c, 0)).toBe(true);
  });

  it('lists at most 16 reasons for a reading, and says how many more', () => {
    const names = Array.from({ length: 40 }, (_, i) => `"m${i}":1`).join(',');
    const p = parse(`{"seq":1,"ts":"2026-11-22T11:59:00Z","readings":{${names}}}`);
    assertTotal(p);
    expect(p.bad[0]!.reasons.at(-1)!.message).toContain('24 more problems');
  });
});

describe('parseDeviceJson', () => {
  it('agrees with JSON.parse on JSON it writes, and finds every duplicate name', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = parseDeviceJson(Buffer.from(JSON.stringify(v)));
        expect(r.ok ? r.value : r).toEqual(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 2000, seed: 16 },
    );
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1 }),
        fc.nat(),
        (o, at) => {
          const k = Object.keys(o)[at % Object.keys(o).length]!;
          const text = `{${JSON.stringify(k)}:0,${JSON.stringify(o).slice(1)}`;
          expect(parseDeviceJson(Buffer.from(text))).toMatchObject({
            ok: false,
            code: 'DUPLICATE_KEY',
          });
        },
      ),
      { numRuns: 1000, seed: 16 },
    );
  });

  it('refuses nesting beyond its bound before parsing it', () => {
    fc.assert(
      fc.property(deep, (j) => {
        const r = parseDeviceJson(Buffer.from(render(j, fresh())));
        if (!r.ok) expect(r.code).toBe('NESTING_TOO_DEEP');
      }),
      { numRuns: 200, seed: 16 },
    );
  });
});
