/**
 * The canonical encoding of one raw reading as a Merkle leaf (docs/mrv.md, "Canonical encoding"),
 * and the CSV a verifier recomputes the root from. Binary, so that no language's float or date
 * formatting matters:
 *
 *   u8  version = 1
 *   u8  length of device id, then the device id (ASCII, [a-z0-9_-]{3,64})
 *   16  unit id (the UUID's 16 bytes)
 *   i64 timestamp, microseconds since 1970-01-01T00:00:00Z (PostgreSQL's precision), big-endian
 *   i64 seq, big-endian
 *   u8  number of metrics present (non-null)
 *   per metric, names in ascending byte order: u8 name length, name (ASCII), f64 value
 *       (IEEE 754 binary64, big-endian)
 *
 * A digester report's leaves are ordered by (device id bytes, timestamp); a site report's by unit
 * id bytes first (compareSiteReadings). No database import here.
 */

export interface RawReading {
  deviceId: string;
  unitId: string;
  /** Microseconds since the Unix epoch (PostgreSQL timestamptz resolution). */
  tsMicros: bigint;
  seq: bigint;
  /** Non-null metric values only. */
  values: Readonly<Record<string, number>>;
}

export const ENCODING_VERSION = 1;

const PRINTABLE = /^[\x20-\x7e]{1,255}$/;
// Device ids, unit ids and metric names repeat on every leaf: encode each once.
const asciiCache = new Map<string, Buffer>();
const uuidCache = new Map<string, Buffer>();

function ascii(s: string, what: string): Buffer {
  let b = asciiCache.get(s);
  if (b) return b;
  if (!PRINTABLE.test(s))
    throw new Error(`${what} ${JSON.stringify(s)} is not 1–255 printable ASCII characters`);
  b = Buffer.from(s, 'latin1');
  if (asciiCache.size < 10_000) asciiCache.set(s, b);
  return b;
}

function uuidBytes(uuid: string): Buffer {
  let b = uuidCache.get(uuid);
  if (b) return b;
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex))
    throw new Error(`unit id ${JSON.stringify(uuid)} is not a UUID`);
  b = Buffer.from(hex, 'hex');
  if (uuidCache.size < 10_000) uuidCache.set(uuid, b);
  return b;
}

/** Byte order of printable ASCII strings (ascii() refuses anything else): UTF-16 order is the same. */
function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function encodeReading(r: RawReading): Buffer {
  const device = ascii(r.deviceId, 'device id');
  const unit = uuidBytes(r.unitId);
  const names = Object.keys(r.values);
  if (names.length > 255) throw new Error('more than 255 metrics in one reading');
  const encodedNames = names.map((n) => ascii(n, 'metric name'));
  names.sort(byteOrder);
  let size = 2 + device.length + 16 + 17;
  for (const n of encodedNames) size += 1 + n.length + 8;
  const out = Buffer.allocUnsafe(size);
  let o = out.writeUInt8(ENCODING_VERSION, 0);
  o = out.writeUInt8(device.length, o);
  o += device.copy(out, o);
  o += unit.copy(out, o);
  o = out.writeBigInt64BE(r.tsMicros, o);
  o = out.writeBigInt64BE(r.seq, o);
  o = out.writeUInt8(names.length, o);
  for (const name of names) {
    const n = asciiCache.get(name) ?? ascii(name, 'metric name');
    o = out.writeUInt8(n.length, o);
    o += n.copy(out, o);
    o = out.writeDoubleBE(r.values[name]!, o);
  }
  return out;
}

/** Leaf order: device id bytes, then time. */
export function compareReadings(
  a: Pick<RawReading, 'deviceId' | 'tsMicros'>,
  b: Pick<RawReading, 'deviceId' | 'tsMicros'>,
): number {
  return (
    byteOrder(a.deviceId, b.deviceId) ||
    (a.tsMicros < b.tsMicros ? -1 : a.tsMicros > b.tsMicros ? 1 : 0)
  );
}

/**
 * A site report's leaf order: unit id bytes (lowercase hex of the UUID sorts as its bytes), then
 * as above. Each digester's leaves are one run, in its own report's order.
 */
export function compareSiteReadings(
  a: Pick<RawReading, 'unitId' | 'deviceId' | 'tsMicros'>,
  b: Pick<RawReading, 'unitId' | 'deviceId' | 'tsMicros'>,
): number {
  return byteOrder(a.unitId.toLowerCase(), b.unitId.toLowerCase()) || compareReadings(a, b);
}

/** ISO 8601 UTC with microseconds, e.g. 2026-10-01T00:00:00.000000Z. */
export function microsToIso(micros: bigint): string {
  const ms = micros / 1000n - (micros % 1000n < 0n ? 1n : 0n);
  const sub = ((micros % 1_000_000n) + 1_000_000n) % 1_000_000n;
  return `${new Date(Number(ms)).toISOString().slice(0, 19)}.${sub.toString().padStart(6, '0')}Z`;
}

export function isoToMicros(iso: string): bigint {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z$/.exec(iso);
  if (!m) throw new Error(`timestamp ${JSON.stringify(iso)} is not ISO 8601 UTC (…Z)`);
  const secondsMs = Date.parse(`${m[1]}Z`);
  if (Number.isNaN(secondsMs))
    throw new Error(`timestamp ${JSON.stringify(iso)} is not a valid date`);
  return BigInt(secondsMs) * 1000n + BigInt((m[2] ?? '').padEnd(6, '0'));
}

/** A double as CSV text that parses back (Number()) to the same bits, -0 included. */
export function formatValue(v: number): string {
  return Object.is(v, -0) ? '-0' : String(v);
}

export const CSV_FIXED = ['device_id', 'unit_id', 'ts', 'seq'] as const;

export function csvHeader(metrics: readonly string[]): string {
  return [...CSV_FIXED, ...metrics].join(',');
}

export function csvRow(r: RawReading, metrics: readonly string[]): string {
  return [
    r.deviceId,
    r.unitId,
    microsToIso(r.tsMicros),
    r.seq.toString(),
    ...metrics.map((m) => (r.values[m] === undefined ? '' : formatValue(r.values[m]))),
  ].join(',');
}

/** Parses one CSV line under a header from csvHeader; an empty cell is a null metric. */
export function parseCsvRow(header: readonly string[], line: string, lineNo: number): RawReading {
  const cells = line.split(',');
  if (cells.length !== header.length)
    throw new Error(`line ${lineNo}: ${cells.length} fields, the header has ${header.length}`);
  const values: Record<string, number> = {};
  for (let i = CSV_FIXED.length; i < header.length; i += 1) {
    const cell = cells[i]!;
    if (cell === '') continue;
    const v = Number(cell);
    if (cell.trim() !== cell || (Number.isNaN(v) && cell !== 'NaN'))
      throw new Error(`line ${lineNo}: ${header[i]} ${JSON.stringify(cell)} is not a number`);
    values[header[i]!] = v;
  }
  if (!/^-?\d+$/.test(cells[3]!))
    throw new Error(`line ${lineNo}: seq ${JSON.stringify(cells[3])} is not an integer`);
  return {
    deviceId: cells[0]!,
    unitId: cells[1]!,
    tsMicros: isoToMicros(cells[2]!),
    seq: BigInt(cells[3]!),
    values,
  };
}

export function parseCsvHeader(line: string): string[] {
  const header = line.trim().split(',');
  if (CSV_FIXED.some((c, i) => header[i] !== c))
    throw new Error(`the CSV header must start with ${CSV_FIXED.join(',')}`);
  return header;
}
