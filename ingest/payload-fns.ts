import { z } from 'zod';
import { parseDeviceJson, storableText } from '../broker/device-json.ts';
import {
  deviceKinds,
  isMetricName,
  metricCatalogue,
  type DeviceKind,
  type MetricName,
  type MetricSpec,
} from '../devices/metrics.ts';
import type { Reason } from './ingest-errors.ts';

/**
 * Parsing and validation of telemetry payloads: pure functions, no I/O. A payload is one reading
 * `{seq, ts, readings}`, a batch `{batch: [reading, …]}`, or SenML (RFC 8428). Each reading is
 * accepted or quarantined as a whole (a reading is one observation; storing part of it would make
 * its replay collide with the part already stored); in a batch, each reading stands alone.
 */

export interface ValidationLimits {
  maxBatch: number;
  maxFutureMs: number;
  backfillMs: number;
}

export interface GoodReading {
  seq: number;
  ts: Date;
  values: Partial<Record<MetricName, number>>;
}

export interface BadReading {
  /** Index in the batch, or undefined for the whole payload. */
  index: number | undefined;
  seq: number | undefined;
  reasons: Reason[];
}

export interface ParsedPayload {
  good: GoodReading[];
  bad: BadReading[];
  /** SenML: its readings carry no seq of the device's (theirs is derived from the time). */
  senml?: boolean;
}

// RFC 3339 date-time with an explicit offset (Z or ±hh:mm).
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

const readingSchema = z.object({
  seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  ts: z.string().regex(RFC3339, 'must be an RFC 3339 date-time with an offset'),
  readings: z
    .record(z.string(), z.unknown())
    .refine((r) => Object.keys(r).length > 0, 'must hold at least one metric'),
});
const batchSchema = z.object({ batch: z.array(z.unknown()).min(1) });
const senmlRecord = z.object({
  bn: z.string().optional(),
  bt: z.number().optional(),
  n: z.string().optional(),
  t: z.number().optional(),
  v: z.number().optional(),
  vb: z.boolean().optional(),
});

/**
 * A number JSON can write but JavaScript cannot hold as written: beyond a 64-bit float (JSON.parse
 * turns 1e400 into Infinity) or, where an integer is wanted, beyond 2^53-1 (rounded on parse).
 */
function unrepresentable(value: unknown, integer: boolean): boolean {
  return (
    typeof value === 'number' &&
    (!Number.isFinite(value) ||
      (integer && Number.isInteger(value) && !Number.isSafeInteger(value)))
  );
}
const UNREPRESENTABLE = 'is beyond what a 64-bit float (for an integer: 2^53-1) holds';

function zodReasons(error: z.ZodError, prefix: string, raw?: unknown): Reason[] {
  return error.issues.map((i) => {
    const field = [prefix, ...i.path.map(String)].filter(Boolean).join('.');
    const key = i.path.length === 1 ? i.path[0] : undefined;
    const value =
      typeof key === 'string' && typeof raw === 'object' && raw !== null
        ? (raw as Record<string, unknown>)[key]
        : undefined;
    return unrepresentable(value, key === 'seq')
      ? { field, code: 'NUMBER_UNREPRESENTABLE', message: UNREPRESENTABLE }
      : { field, code: 'SCHEMA', message: i.message };
  });
}

/** Each kind's metrics and their specs: one lookup answers "known?", "this kind's?" and "which range?". */
const metricsOfKind = Object.fromEntries(
  deviceKinds.map((kind) => [
    kind,
    new Map<string, MetricSpec>(
      Object.entries(metricCatalogue).filter(([, spec]) =>
        (spec.kinds as readonly DeviceKind[]).includes(kind),
      ),
    ),
  ]),
) as Record<DeviceKind, Map<string, MetricSpec>>;

/**
 * The rules of `readingSchema` and `checkWithZod`, written out for a reading that passes them all
 * (nearly every reading): no zod issue machinery, no intermediate copies. It only ever accepts;
 * whatever it does not accept goes through zod, which says why. A property test
 * (payload-fns.test.ts) holds it to the same verdict and output as the zod path.
 */
export function acceptReading(
  raw: unknown,
  kind: DeviceKind,
  limits: ValidationLimits,
  now: number,
): GoodReading | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const { seq, ts, readings } = raw as { seq?: unknown; ts?: unknown; readings?: unknown };
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return undefined;
  if (typeof ts !== 'string' || !RFC3339.test(ts)) return undefined;
  const at = Date.parse(ts);
  if (!(at <= now + limits.maxFutureMs && at >= now - limits.backfillMs)) return undefined; // NaN fails too
  if (typeof readings !== 'object' || readings === null || Array.isArray(readings))
    return undefined;
  const values: Partial<Record<MetricName, number>> = {};
  let n = 0;
  const allowed = metricsOfKind[kind];
  for (const name of Object.keys(readings)) {
    const spec = allowed.get(name);
    if (spec === undefined) return undefined; // unknown, or not this kind's
    const value = (readings as Record<string, unknown>)[name];
    let x: number;
    if (spec.boolean) {
      if (typeof value !== 'boolean') return undefined;
      x = value ? 1 : 0;
    } else {
      if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
      x = value + 0; // -0 is stored as 0
    }
    if (x < spec.min || x > spec.max) return undefined;
    values[name as MetricName] = x;
    n++;
  }
  return n > 0 ? { seq, ts: new Date(at), values } : undefined;
}

/** The full check through zod: a reading, or every reason it is refused (with `prefix` on each field). */
export function checkWithZod(
  raw: unknown,
  prefix: string,
  kind: DeviceKind,
  limits: ValidationLimits,
  now: number,
): GoodReading | Reason[] {
  const shape = readingSchema.safeParse(raw);
  if (!shape.success) return zodReasons(shape.error, prefix, raw);
  const { seq, ts } = shape.data;
  // The metrics as sent, not zod's copy of them: copying drops an own "__proto__" key, which
  // would then vanish without a word instead of being refused as an unknown metric.
  const readings = (raw as { readings: Record<string, unknown> }).readings;
  const reasons: Reason[] = [];
  const at = Date.parse(ts);
  if (!Number.isFinite(at))
    reasons.push({ field: join(prefix, 'ts'), code: 'SCHEMA', message: 'is not a valid date' });
  else if (at > now + limits.maxFutureMs)
    reasons.push({
      field: join(prefix, 'ts'),
      code: 'TS_FUTURE',
      message: `is more than ${limits.maxFutureMs / 1000} s ahead of the server clock`,
    });
  else if (at < now - limits.backfillMs)
    reasons.push({
      field: join(prefix, 'ts'),
      code: 'TS_TOO_OLD',
      message: `is older than the ${limits.backfillMs / 86_400_000}-day backfill window`,
    });
  const values: Partial<Record<MetricName, number>> = {};
  for (const [name, value] of Object.entries(readings)) {
    const field = join(prefix, `readings.${name}`);
    if (!isMetricName(name)) {
      reasons.push({ field, code: 'UNKNOWN_METRIC', message: 'is not in the metric catalogue' });
      continue;
    }
    const spec = metricCatalogue[name];
    if (!(spec.kinds as readonly DeviceKind[]).includes(kind)) {
      reasons.push({ field, code: 'WRONG_KIND', message: `is not reported by a ${kind}` });
      continue;
    }
    const isBoolean = 'boolean' in spec && spec.boolean;
    if (!isBoolean && unrepresentable(value, false)) {
      reasons.push({ field, code: 'NUMBER_UNREPRESENTABLE', message: UNREPRESENTABLE });
      continue;
    }
    if (
      isBoolean ? typeof value !== 'boolean' : typeof value !== 'number' || !Number.isFinite(value)
    ) {
      reasons.push({
        field,
        code: 'WRONG_TYPE',
        message: `must be ${isBoolean ? 'true or false' : 'a finite number'}`,
      });
      continue;
    }
    const n = typeof value === 'boolean' ? (value ? 1 : 0) : (value as number) + 0; // -0 is stored as 0
    if (n < spec.min || n > spec.max) {
      reasons.push({
        field,
        code: 'OUT_OF_RANGE',
        message: `${n} is outside ${spec.min}…${spec.max} ${spec.unit}`,
      });
      continue;
    }
    values[name] = n;
  }
  return reasons.length > 0 ? reasons : { seq, ts: new Date(at), values };
}

function join(prefix: string, field: string): string {
  return prefix ? `${prefix}.${field}` : field;
}

/** The largest time a Date holds, in seconds either side of 1970 (ECMA-262 §21.4.1.1). */
const MAX_DATE_SECONDS = 8.64e12;

/** SenML pack → readings grouped by time. SenML has no sequence number: seq is the time in ms. */
function fromSenml(records: unknown[]): unknown[] | Reason[] {
  const byTime = new Map<number, Record<string, unknown>>();
  let bt = 0;
  for (const [i, raw] of records.entries()) {
    const r = senmlRecord.safeParse(raw);
    if (!r.success) return zodReasons(r.error, `[${i}]`, raw);
    if (r.data.bt !== undefined) bt = r.data.bt;
    if (r.data.n === undefined) continue;
    const seconds = bt + (r.data.t ?? 0);
    // Finite bt and t still add up to a time no Date holds (or to Infinity): refused, not thrown.
    if (!(Math.abs(seconds) <= MAX_DATE_SECONDS))
      return [
        {
          field: `[${i}].t`,
          code: 'TS_UNREPRESENTABLE',
          message: `bt + t = ${seconds} s is beyond any date (±${MAX_DATE_SECONDS} s)`,
        },
      ];
    const name = r.data.n;
    const values = byTime.get(seconds) ?? {};
    values[name] = r.data.vb ?? r.data.v;
    byTime.set(seconds, values);
  }
  if (byTime.size === 0)
    return [
      {
        field: '',
        code: 'SCHEMA',
        message: 'a SenML pack must hold at least one record with a name (n)',
      },
    ];
  return [...byTime.entries()].map(([seconds, readings]) => ({
    seq: Math.round(seconds * 1000),
    ts: new Date(seconds * 1000).toISOString(),
    readings,
  }));
}

export function parsePayload(
  payload: Buffer,
  kind: DeviceKind,
  limits: ValidationLimits,
  now = Date.now(),
): ParsedPayload {
  const parsed = parseDeviceJson(payload);
  if (!parsed.ok)
    return {
      good: [],
      bad: [
        {
          index: undefined,
          seq: undefined,
          reasons: [{ field: '', code: parsed.code, message: parsed.message }],
        },
      ],
    };
  const json = parsed.value;
  let items: unknown[];
  let batched = false;
  if (Array.isArray(json)) {
    const converted = fromSenml(json);
    if (converted.length > 0 && 'code' in (converted[0] as object))
      return {
        good: [],
        bad: [{ index: undefined, seq: undefined, reasons: storable(converted as Reason[]) }],
      };
    items = converted;
    batched = true;
  } else if (json !== null && typeof json === 'object' && 'batch' in json) {
    const b = batchSchema.safeParse(json);
    if (!b.success)
      return {
        good: [],
        bad: [{ index: undefined, seq: undefined, reasons: storable(zodReasons(b.error, '')) }],
      };
    items = b.data.batch;
    batched = true;
  } else {
    items = [json];
  }
  if (items.length > limits.maxBatch) {
    return {
      good: [],
      bad: [
        {
          index: undefined,
          seq: undefined,
          reasons: [
            {
              field: 'batch',
              code: 'BATCH_TOO_LARGE',
              message: `${items.length} readings; at most ${limits.maxBatch} per message`,
            },
          ],
        },
      ],
    };
  }
  const out: ParsedPayload = { good: [], bad: [] };
  if (Array.isArray(json)) out.senml = true;
  for (let index = 0; index < items.length; index++) {
    const item = items[index];
    const result =
      acceptReading(item, kind, limits, now) ??
      checkWithZod(item, batched ? `batch[${index}]` : '', kind, limits, now);
    if (Array.isArray(result)) {
      const seq = (item as { seq?: unknown } | null)?.seq;
      // Only a seq the quarantine's int8 column holds as sent; anything else is in the payload.
      out.bad.push({
        index: batched ? index : undefined,
        seq: Number.isSafeInteger(seq) ? (seq as number) + 0 : undefined,
        reasons: storable(result),
      });
    } else out.good.push(result);
  }
  return out;
}

/** At most this many reasons per reading: a reading with 30,000 unknown metrics is one problem. */
const MAX_REASONS = 16;

/** Reasons carry device text (metric names, JSON.parse's excerpt): made storable and bounded. */
function storable(reasons: Reason[]): Reason[] {
  const kept = reasons.length > MAX_REASONS ? reasons.slice(0, MAX_REASONS) : reasons;
  const out = kept.map((r) => ({
    field: storableText(r.field),
    code: r.code,
    message: storableText(r.message, 400),
  }));
  if (reasons.length > MAX_REASONS)
    out[MAX_REASONS - 1]!.message +=
      ` (and ${reasons.length - MAX_REASONS} more problems not listed)`;
  return out;
}
