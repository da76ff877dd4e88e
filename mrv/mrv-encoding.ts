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
 * Leaves are ordered by (device id bytes, timestamp). No database import here.
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

function ascii(s: string, what: string): Buffer {
  if (!/^[\x20-\x7e]{1,255}$/.test(s)) throw new Error(`${what} ${JSON.stringify(s)} is not 1–255 printable ASCII characters`);
  return Buffer.from(s, 'latin1');
}

function uuidBytes(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`unit id ${JSON.stringify(uuid)} is not a UUID`);
  return Buffer.from(hex, 'hex');
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1'));
}

export function encodeReading(r: RawReading): Buffer {
  const device = ascii(r.deviceId, 'device id');
  const names = Object.keys(r.values).sort(byteOrder);
  if (names.length > 255) throw new Error('more than 255 metrics in one reading');
  const parts: Buffer[] = [Buffer.of(ENCODING_VERSION, device.length), device, uuidBytes(r.unitId)];
  const fixed = Buffer.alloc(17);
  fixed.writeBigInt64BE(r.tsMicros, 0);
  fixed.writeBigInt64BE(r.seq, 8);
  fixed.writeUInt8(names.length, 16);
  parts.push(fixed);
  for (const name of names) {
    const n = ascii(name, 'metric name');
    const v = Buffer.alloc(8);
    v.writeDoubleBE(r.values[name]!, 0);
    parts.push(Buffer.of(n.length), n, v);
  }
  return Buffer.concat(parts);
}

/** Leaf order: device id bytes, then time. */
export function compareReadings(a: Pick<RawReading, 'deviceId' | 'tsMicros'>, b: Pick<RawReading, 'deviceId' | 'tsMicros'>): number {
  return byteOrder(a.deviceId, b.deviceId) || (a.tsMicros < b.tsMicros ? -1 : a.tsMicros > b.tsMicros ? 1 : 0);
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
  if (Number.isNaN(secondsMs)) throw new Error(`timestamp ${JSON.stringify(iso)} is not a valid date`);
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
  return [r.deviceId, r.unitId, microsToIso(r.tsMicros), r.seq.toString(), ...metrics.map((m) => (r.values[m] === undefined ? '' : formatValue(r.values[m])))].join(',');
}

/** Parses one CSV line under a header from csvHeader; an empty cell is a null metric. */
export function parseCsvRow(header: readonly string[], line: string, lineNo: number): RawReading {
  const cells = line.split(',');
  if (cells.length !== header.length) throw new Error(`line ${lineNo}: ${cells.length} fields, the header has ${header.length}`);
  const values: Record<string, number> = {};
  for (let i = CSV_FIXED.length; i < header.length; i += 1) {
    const cell = cells[i]!;
    if (cell === '') continue;
    const v = Number(cell);
    if (cell.trim() !== cell || (Number.isNaN(v) && cell !== 'NaN')) throw new Error(`line ${lineNo}: ${header[i]} ${JSON.stringify(cell)} is not a number`);
    values[header[i]!] = v;
  }
  if (!/^-?\d+$/.test(cells[3]!)) throw new Error(`line ${lineNo}: seq ${JSON.stringify(cells[3])} is not an integer`);
  return { deviceId: cells[0]!, unitId: cells[1]!, tsMicros: isoToMicros(cells[2]!), seq: BigInt(cells[3]!), values };
}

export function parseCsvHeader(line: string): string[] {
  const header = line.trim().split(',');
  if (CSV_FIXED.some((c, i) => header[i] !== c)) throw new Error(`the CSV header must start with ${CSV_FIXED.join(',')}`);
  return header;
}
