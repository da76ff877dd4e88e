import fc from 'fast-check';
import { metricNames } from '../devices/metrics.ts';

/**
 * Generators of what a hostile or broken device can send, for the totality properties
 * (ingest/payload-fns.totality.test.ts, test/device-fuzz.test.ts). Payloads are JSON-like trees
 * written out by hand, so that they can say what JSON.stringify never writes: 1e400, -0, a name
 * twice in one object, raw \u0000 and lone-surrogate escapes, 5,000 levels of nesting. Valid
 * times and seqs are placeholders filled in when the payload is written (`Fresh`), so that a run
 * against a live gateway never collides with an earlier message by accident.
 */
export type J =
  | { t: 'raw'; text: string } // written as is: a number literal, true, null, or not JSON at all
  | { t: 'str'; value: string } // a JS string, written with JSON.stringify (escapes what it must)
  | { t: 'esc'; text: string } // the inside of a JSON string as written: '\\u0000', '\\ud800'
  | { t: 'obj'; entries: [J, J][] } // keys are str/esc nodes; duplicates allowed
  | { t: 'arr'; items: J[] }
  | { t: 'time'; form: 'iso' | 'seconds' } // a fresh time inside the accepted window
  | { t: 'seq' }; // a fresh seq above every earlier one

export interface Fresh {
  /** ms since epoch, within the accepted window, different from every earlier one. */
  time(): number;
  seq(): number;
}

export function render(j: J, fresh: Fresh): string {
  switch (j.t) {
    case 'raw':
      return j.text;
    case 'str':
      return JSON.stringify(j.value);
    case 'esc':
      return `"${j.text}"`;
    case 'obj':
      return `{${j.entries.map(([k, v]) => `${render(k, fresh)}:${render(v, fresh)}`).join(',')}}`;
    case 'arr':
      return `[${j.items.map((i) => render(i, fresh)).join(',')}]`;
    case 'time': {
      const ms = fresh.time();
      return j.form === 'iso' ? JSON.stringify(new Date(ms).toISOString()) : String(ms / 1000);
    }
    case 'seq':
      return String(fresh.seq());
  }
}

const raw = (text: string): J => ({ t: 'raw', text });
const str = (value: string): J => ({ t: 'str', value });
const numText = (d: number): string => (Object.is(d, -0) ? '-0' : String(d));

/** Numbers as written, at and beyond every limit JavaScript has. */
export const extremeNumberText = fc.oneof(
  fc.constantFrom(
    '1e400',
    '-1e400',
    '1e308',
    '-1.7976931348623157e308',
    '5e-324',
    '1e-400',
    '-0',
    '-0.0',
    '0e0',
    '-0e-0',
    '9007199254740991',
    '9007199254740992',
    '9007199254740993',
    '-9007199254740993',
    '18446744073709551616',
    `1${'0'.repeat(400)}`,
    '123456789012345678901234567890.5',
    '8.64e12',
    '8.640000000001e12',
    '-8.64e12',
    '8.64e15',
    '1E+21',
    '0.1e-5',
    '1e300',
    '-1e300',
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(numText),
  fc.integer().map(String),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).map(String),
);
const number: fc.Arbitrary<J> = extremeNumberText.map(raw);

/** Text nobody should send: NUL, lone surrogates, separators, astral characters, 20k characters. */
export const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom(
    '',
    '\0',
    'ph\0',
    '\ud800',
    '\udc00x',
    '\u2028\u2029',
    '€',
    '𝄞',
    '__proto__',
    'constructor',
    'ph',
    '1.2.3',
  ),
  fc.nat({ max: 20_000 }).map((n) => 'x'.repeat(n)),
);
const escapes = fc.constantFrom(
  '\\u0000',
  '\\ud800',
  '\\udfff\\ud800',
  '\\u0070\\u0068',
  '\\"',
  '\\\\',
  '\\uDBFF\\uDFFF',
  'a\\u0000b',
  '\\/',
);
const hostileText: fc.Arbitrary<J> = fc.oneof(
  hostileString.map(str),
  escapes.map((text): J => ({ t: 'esc', text })),
);
const key: fc.Arbitrary<J> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...metricNames).map(str) },
  { weight: 1, arbitrary: hostileText },
);

/** An object whose entries may repeat a name (the first entry, once more, at the end). */
const obj = (entries: fc.Arbitrary<[J, J][]>): fc.Arbitrary<J> =>
  fc.tuple(entries, fc.nat({ max: 4 })).map(([e, dup]) => ({
    t: 'obj',
    entries: dup === 0 && e.length > 0 ? [...e, [e[0]![0], e[0]![1]]] : e,
  }));

const timeIso: fc.Arbitrary<J> = fc.constant({ t: 'time', form: 'iso' });
const tsValue = fc.oneof(
  { weight: 5, arbitrary: timeIso },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        '+275760-09-13T00:00:00.000Z',
        '275761-01-01T00:00:00Z',
        '9999-12-31T23:59:59Z',
        '0000-01-01T00:00:00Z',
        '2026-02-30T00:00:00Z',
        '2026-11-22T24:00:00Z',
        '2026-11-22T11:59:00.1234567891Z',
        '2026-11-22T11:59:60Z',
        '1970-01-01T00:00:00+99:99',
      )
      .map(str),
  },
  { weight: 1, arbitrary: number },
  { weight: 1, arbitrary: hostileText },
);
const seqValue = fc.oneof(
  { weight: 5, arbitrary: fc.constant<J>({ t: 'seq' }) },
  { weight: 2, arbitrary: number },
  { weight: 1, arbitrary: fc.constantFrom(raw('null'), str('1')) },
);
const metricValue: fc.Arbitrary<J> = fc.oneof(
  { weight: 4, arbitrary: fc.double({ min: 0, max: 14, noNaN: true }).map((d) => raw(numText(d))) },
  { weight: 2, arbitrary: number },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      raw('true'),
      raw('false'),
      raw('null'),
      raw('[]'),
      raw('{}'),
      raw('[[[[1]]]]'),
    ),
  },
  { weight: 1, arbitrary: hostileText },
);
const readings = obj(fc.array(fc.tuple(key, metricValue), { maxLength: 6 }));

/** `{seq, ts, readings}` near and beyond every rule, sometimes with a field missing or added. */
export const reading: fc.Arbitrary<J> = obj(
  fc
    .record({
      seq: fc.option(seqValue, { freq: 8 }),
      ts: fc.option(tsValue, { freq: 8 }),
      readings: fc.option(readings, { freq: 8 }),
      extra: fc.option(fc.tuple(hostileText, number), { freq: 4 }),
    })
    .map(({ seq, ts, readings: r, extra }) => {
      const e: [J, J][] = [];
      if (seq) e.push([str('seq'), seq]);
      if (ts) e.push([str('ts'), ts]);
      if (r) e.push([str('readings'), r]);
      if (extra) e.push(extra);
      return e;
    }),
);
export const batch: fc.Arbitrary<J> = fc
  .array(reading, { maxLength: 6 })
  .map((items): J => ({ t: 'obj', entries: [[str('batch'), { t: 'arr', items }]] }));

/** SenML (RFC 8428) records: bt + t where no date reaches, names from the catalogue and beyond. */
const senmlRecord = obj(
  fc
    .record({
      bn: fc.option(hostileText, { freq: 4 }),
      bt: fc.option(
        fc.oneof(
          { weight: 3, arbitrary: fc.constant<J>({ t: 'time', form: 'seconds' }) },
          { weight: 2, arbitrary: number },
        ),
        { freq: 2 },
      ),
      n: fc.option(key, { freq: 6 }),
      t: fc.option(
        fc.oneof(
          fc.integer({ min: -60, max: 60 }).map((n) => raw(String(n))),
          number,
        ),
        { freq: 3 },
      ),
      v: fc.option(metricValue, { freq: 6 }),
      vb: fc.option(fc.constantFrom(raw('true'), raw('false')), { freq: 6 }),
    })
    .map((r) => Object.entries(r).flatMap(([k, v]): [J, J][] => (v ? [[str(k), v]] : []))),
);
export const senml: fc.Arbitrary<J> = fc
  .array(senmlRecord, { maxLength: 6 })
  .map((items): J => ({ t: 'arr', items }));

/** A reading (or just a 1) under up to 5,000 levels of arrays or objects. */
export const deep: fc.Arbitrary<J> = fc
  .tuple(fc.integer({ min: 1, max: 5000 }), fc.boolean())
  .map(([n, objects]) =>
    raw(objects ? `${'{"a":'.repeat(n)}1${'}'.repeat(n)}` : `${'['.repeat(n)}1${']'.repeat(n)}`),
  );

/** Readings the contract accepts (so that storing is exercised too), as one reading, a batch or SenML. */
const goodValues = fc.record(
  {
    ph: fc.double({ min: 0, max: 14, noNaN: true }),
    temperature_c: fc.double({ min: -40, max: 100, noNaN: true }),
    battery_v: fc.integer({ min: 0, max: 30 }),
  },
  { requiredKeys: ['ph'] },
);
const goodReading: fc.Arbitrary<J> = goodValues.map((v) => ({
  t: 'obj',
  entries: [
    [str('seq'), { t: 'seq' }],
    [str('ts'), { t: 'time', form: 'iso' }],
    [
      str('readings'),
      { t: 'obj', entries: Object.entries(v).map(([k, x]): [J, J] => [str(k), raw(numText(x))]) },
    ],
  ],
}));
const good: fc.Arbitrary<J> = fc.oneof(
  goodReading,
  fc
    .array(goodReading, { minLength: 1, maxLength: 4 })
    .map((items): J => ({ t: 'obj', entries: [[str('batch'), { t: 'arr', items }]] })),
  goodValues.map((v): J => ({
    t: 'arr',
    items: Object.entries(v).map(([k, x], i): J => ({
      t: 'obj',
      entries: [
        ...(i === 0 ? [[str('bt'), { t: 'time', form: 'seconds' }] as [J, J]] : []),
        [str('n'), str(k)],
        [str('v'), raw(numText(x))],
      ],
    })),
  })),
);

/** Telemetry in every form the contract knows, and JSON values it does not. */
export const telemetryJson: fc.Arbitrary<J> = fc.oneof(
  { weight: 2, arbitrary: good },
  { weight: 4, arbitrary: reading },
  { weight: 2, arbitrary: batch },
  { weight: 3, arbitrary: senml },
  { weight: 1, arbitrary: deep },
  {
    weight: 1,
    arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => raw(JSON.stringify(v) ?? 'null')),
  },
);

/** `devices/{id}/state`, firmware reports included. */
export const stateJson: fc.Arbitrary<J> = fc.oneof(
  obj(
    fc
      .record({
        firmware: fc.option(
          fc.oneof(fc.constantFrom('1.2.3', '2.0.0-rc1').map(str), hostileText, number),
          { freq: 4 },
        ),
        uptimeS: fc.option(
          fc.oneof(
            fc.nat().map((n) => raw(String(n))),
            number,
          ),
          { freq: 2 },
        ),
        firmwareUpdate: fc.option(
          obj(
            fc
              .record({
                rolloutId: fc.oneof(fc.uuid().map(str), hostileText),
                status: fc.oneof(
                  fc.constantFrom('downloading', 'verifying', 'installed', 'failed').map(str),
                  hostileText,
                ),
                reason: fc.option(hostileText, { freq: 2 }),
              })
              .map((r) =>
                Object.entries(r).flatMap(([k, v]): [J, J][] => (v ? [[str(k), v]] : [])),
              ),
          ),
          { freq: 2 },
        ),
      })
      .map((r) => Object.entries(r).flatMap(([k, v]): [J, J][] => (v ? [[str(k), v]] : []))),
  ),
  deep,
  fc.jsonValue({ maxDepth: 2 }).map((v) => raw(JSON.stringify(v) ?? 'null')),
);

/** DER of `depth` nested SEQUENCEs (definite lengths): ASN.1 parsers that recurse meet their stack. */
function nestedDer(depth: number): Buffer {
  let inner = Buffer.from([0x05, 0x00]); // NULL
  for (let i = 0; i < depth; i++) {
    const n = inner.length;
    const len =
      n < 0x80
        ? Buffer.from([n])
        : n < 0x100
          ? Buffer.from([0x81, n])
          : n < 0x10000
            ? Buffer.from([0x82, n >> 8, n & 0xff])
            : Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
    inner = Buffer.concat([Buffer.from([0x30]), len, inner]);
  }
  return inner;
}
const pem = (der: Buffer): string =>
  `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;

/** `devices/{id}/cert/csr`: PEM around garbage, nested ASN.1, text that is no PEM at all. */
export const csrPayload: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(pem(Buffer.from(b)))),
  fc.integer({ min: 1, max: 20_000 }).map((d) => Buffer.from(pem(nestedDer(d)))),
  hostileString.map((s) =>
    Buffer.from(`-----BEGIN CERTIFICATE REQUEST-----\n${s}\n-----END CERTIFICATE REQUEST-----`),
  ),
  hostileString.map((s) => Buffer.from(s)),
);

/** A payload written when it is sent (fresh times); shown in a counterexample as its text. */
export type Payload = (() => Buffer) & { [fc.toStringMethod]: () => string };
const shown = (make: () => Buffer, preview: () => Buffer): Payload =>
  Object.assign(make, {
    [fc.toStringMethod]: () => JSON.stringify(preview().toString('latin1').slice(0, 2000)),
  });
const zero: Fresh = { time: () => Date.parse('2026-01-01T00:00:00Z'), seq: () => 1 };

/** Bytes: anything at all, and valid-looking JSON with one byte broken (invalid UTF-8, a NUL). */
export function withRawBytes(json: fc.Arbitrary<J>, fresh: () => Fresh): fc.Arbitrary<Payload> {
  const broken = (j: J, at: number, byte: number, f: Fresh): Buffer => {
    const b = Buffer.from(render(j, f));
    if (b.length > 0) b[at % b.length] = byte;
    return b;
  };
  return fc.oneof(
    {
      weight: 6,
      arbitrary: json.map((j) =>
        shown(
          () => Buffer.from(render(j, fresh())),
          () => Buffer.from(render(j, zero)),
        ),
      ),
    },
    {
      weight: 1,
      arbitrary: fc.uint8Array({ maxLength: 400 }).map((b) =>
        shown(
          () => Buffer.from(b),
          () => Buffer.from(b),
        ),
      ),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(json, fc.nat(), fc.constantFrom(0x00, 0x80, 0xc0, 0xff, 0xed, 0xf4, 0x22, 0x5c))
        .map(([j, at, byte]) =>
          shown(
            () => broken(j, at, byte, fresh()),
            () => broken(j, at, byte, zero),
          ),
        ),
    },
  );
}
