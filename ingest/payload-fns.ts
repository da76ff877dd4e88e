import { z } from 'zod';
import { deviceKinds, isMetricName, metricCatalogue, type DeviceKind, type MetricName, type MetricSpec } from '../devices/metrics.ts';
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
  readings: z.record(z.string(), z.unknown()).refine((r) => Object.keys(r).length > 0, 'must hold at least one metric'),
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

function zodReasons(error: z.ZodError, prefix: string): Reason[] {
  return error.issues.map((i) => ({ field: [prefix, ...i.path.map(String)].filter(Boolean).join('.'), code: 'SCHEMA', message: i.message }));
}

/** Each kind's metrics and their specs: one lookup answers "known?", "this kind's?" and "which range?". */
const metricsOfKind = Object.fromEntries(
  deviceKinds.map((kind) => [kind, new Map<string, MetricSpec>(Object.entries(metricCatalogue).filter(([, spec]) => (spec.kinds as readonly DeviceKind[]).includes(kind)))]),
) as Record<DeviceKind, Map<string, MetricSpec>>;

/**
 * The rules of `readingSchema` and `checkWithZod`, written out for a reading that passes them all
 * (nearly every reading): no zod issue machinery, no intermediate copies. It only ever accepts;
 * whatever it does not accept goes through zod, which says why. A property test
 * (payload-fns.test.ts) holds it to the same verdict and output as the zod path.
 */
export function acceptReading(raw: unknown, kind: DeviceKind, limits: ValidationLimits, now: number): GoodReading | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const { seq, ts, readings } = raw as { seq?: unknown; ts?: unknown; readings?: unknown };
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return undefined;
  if (typeof ts !== 'string' || !RFC3339.test(ts)) return undefined;
  const at = Date.parse(ts);
  if (!(at <= now + limits.maxFutureMs && at >= now - limits.backfillMs)) return undefined; // NaN fails too
  if (typeof readings !== 'object' || readings === null || Array.isArray(readings)) return undefined;
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
      x = value;
    }
    if (x < spec.min || x > spec.max) return undefined;
    values[name as MetricName] = x;
    n++;
  }
  return n > 0 ? { seq, ts: new Date(at), values } : undefined;
}

/** The full check through zod: a reading, or every reason it is refused (with `prefix` on each field). */
export function checkWithZod(raw: unknown, prefix: string, kind: DeviceKind, limits: ValidationLimits, now: number): GoodReading | Reason[] {
  const shape = readingSchema.safeParse(raw);
  if (!shape.success) return zodReasons(shape.error, prefix);
  const { seq, ts } = shape.data;
  // The metrics as sent, not zod's copy of them: copying drops an own "__proto__" key, which
  // would then vanish without a word instead of being refused as an unknown metric.
  const readings = (raw as { readings: Record<string, unknown> }).readings;
  const reasons: Reason[] = [];
  const at = Date.parse(ts);
  if (!Number.isFinite(at)) reasons.push({ field: join(prefix, 'ts'), code: 'SCHEMA', message: 'is not a valid date' });
  else if (at > now + limits.maxFutureMs) reasons.push({ field: join(prefix, 'ts'), code: 'TS_FUTURE', message: `is more than ${limits.maxFutureMs / 1000} s ahead of the server clock` });
  else if (at < now - limits.backfillMs) reasons.push({ field: join(prefix, 'ts'), code: 'TS_TOO_OLD', message: `is older than the ${limits.backfillMs / 86_400_000}-day backfill window` });
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
    if (isBoolean ? typeof value !== 'boolean' : typeof value !== 'number' || !Number.isFinite(value)) {
      reasons.push({ field, code: 'WRONG_TYPE', message: `must be ${isBoolean ? 'true or false' : 'a finite number'}` });
      continue;
    }
    const n = typeof value === 'boolean' ? (value ? 1 : 0) : (value as number);
    if (n < spec.min || n > spec.max) {
      reasons.push({ field, code: 'OUT_OF_RANGE', message: `${n} is outside ${spec.min}…${spec.max} ${spec.unit}` });
      continue;
    }
    values[name] = n;
  }
  return reasons.length > 0 ? reasons : { seq, ts: new Date(at), values };
}

function join(prefix: string, field: string): string {
  return prefix ? `${prefix}.${field}` : field;
}

/** SenML pack → readings grouped by time. SenML has no sequence number: seq is the time in ms. */
function fromSenml(records: unknown[]): unknown[] | Reason[] {
  const byTime = new Map<number, Record<string, unknown>>();
  let bt = 0;
  for (const [i, raw] of records.entries()) {
    const r = senmlRecord.safeParse(raw);
    if (!r.success) return zodReasons(r.error, `[${i}]`);
    if (r.data.bt !== undefined) bt = r.data.bt;
    if (r.data.n === undefined) continue;
    const seconds = bt + (r.data.t ?? 0);
    const name = r.data.n;
    const values = byTime.get(seconds) ?? {};
    values[name] = r.data.vb ?? r.data.v;
    byTime.set(seconds, values);
  }
  return [...byTime.entries()].map(([seconds, readings]) => ({ seq: Math.round(seconds * 1000), ts: new Date(seconds * 1000).toISOString(), readings }));
}

export function parsePayload(payload: Buffer, kind: DeviceKind, limits: ValidationLimits, now = Date.now()): ParsedPayload {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    return { good: [], bad: [{ index: undefined, seq: undefined, reasons: [{ field: '', code: 'MALFORMED_JSON', message: err instanceof Error ? err.message : 'not JSON' }] }] };
  }
  let items: unknown[];
  let batched = false;
  if (Array.isArray(json)) {
    const converted = fromSenml(json);
    if (converted.length > 0 && 'code' in (converted[0] as object)) return { good: [], bad: [{ index: undefined, seq: undefined, reasons: converted as Reason[] }] };
    items = converted;
    batched = true;
  } else if (json !== null && typeof json === 'object' && 'batch' in json) {
    const b = batchSchema.safeParse(json);
    if (!b.success) return { good: [], bad: [{ index: undefined, seq: undefined, reasons: zodReasons(b.error, '') }] };
    items = b.data.batch;
    batched = true;
  } else {
    items = [json];
  }
  if (items.length > limits.maxBatch) {
    return { good: [], bad: [{ index: undefined, seq: undefined, reasons: [{ field: 'batch', code: 'BATCH_TOO_LARGE', message: `${items.length} readings; at most ${limits.maxBatch} per message` }] }] };
  }
  const out: ParsedPayload = { good: [], bad: [] };
  if (Array.isArray(json)) out.senml = true;
  for (let index = 0; index < items.length; index++) {
    const item = items[index];
    const result = acceptReading(item, kind, limits, now) ?? checkWithZod(item, batched ? `batch[${index}]` : '', kind, limits, now);
    if (Array.isArray(result)) {
      const seq = (item as { seq?: unknown } | null)?.seq;
      out.bad.push({ index: batched ? index : undefined, seq: typeof seq === 'number' ? seq : undefined, reasons: result });
    } else out.good.push(result);
  }
  return out;
}
