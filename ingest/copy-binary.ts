import { metricNames, type MetricName } from '../devices/metrics.ts';

/**
 * Rows of `readings` in PostgreSQL's binary COPY format (the "Binary Format" section of the COPY
 * reference): a fixed header, then per row a field count and each field as a 32-bit length and
 * its bytes in the type's binary send format (-1 for NULL), then a -1 trailer. Next to the text
 * format it spares the gateway a string per row (ISO timestamps, number formatting) and
 * PostgreSQL the parsing of them (BENCHMARKS.md).
 *
 * Column order: ts, device_id, unit_id, seq, then one float8 column per metric in catalogue order.
 */

export interface EncodableRow {
  deviceId: string;
  unitId: string;
  seq: number;
  ts: Date;
  values: Partial<Record<MetricName, number>>;
}

export interface LatestValue {
  deviceId: string;
  metric: MetricName;
  unitId: string;
  ts: Date;
  value: number;
}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const FIELDS = 4 + metricNames.length;
/** PostgreSQL timestamps count microseconds from 2000-01-01T00:00:00Z. */
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
const TWO_32 = 4294967296;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A 64-bit integer as two 32-bit halves; exact for every safe integer, negative ones included. */
function writeInt64(buf: Buffer, n: number, at: number): number {
  const hi = Math.floor(n / TWO_32);
  buf.writeInt32BE(hi, at);
  buf.writeUInt32BE(n - hi * TWO_32, at + 4);
  return at + 8;
}

export function createCopyEncoder() {
  // Units are few and long-lived: their 16 bytes are worked out once.
  const uuids = new Map<string, Buffer>();
  const uuidBytes = (id: string): Buffer => {
    let b = uuids.get(id);
    if (!b) {
      if (!UUID.test(id)) throw new Error(`not a UUID: ${id}`);
      b = Buffer.from(id.replaceAll('-', ''), 'hex');
      if (uuids.size > 100_000) uuids.clear();
      uuids.set(id, b);
    }
    return b;
  };

  /**
   * The COPY data for `rows`, and in the same pass the newest value of every metric per device
   * (sorted by device and metric, the order in which concurrent commits must lock them).
   */
  return function encode(rows: readonly EncodableRow[]): { data: Buffer; latest: LatestValue[] } {
    let size = SIGNATURE.length + 8 + 2;
    for (const r of rows) size += 2 + 12 + 4 + Buffer.byteLength(r.deviceId) + 20 + 12 + metricNames.length * 12;
    const buf = Buffer.allocUnsafe(size);
    let at = SIGNATURE.copy(buf, 0);
    at = buf.writeInt32BE(0, at); // flags
    at = buf.writeInt32BE(0, at); // header extension length
    const latestByDevice = new Map<string, (LatestValue | undefined)[]>();
    for (const r of rows) {
      at = buf.writeInt16BE(FIELDS, at);
      at = buf.writeInt32BE(8, at);
      const ms = r.ts.getTime();
      at = writeInt64(buf, (ms - PG_EPOCH_MS) * 1000, at);
      const idLength = buf.write(r.deviceId, at + 4, 'utf8');
      buf.writeInt32BE(idLength, at);
      at += 4 + idLength;
      at = buf.writeInt32BE(16, at);
      at += uuidBytes(r.unitId).copy(buf, at);
      at = buf.writeInt32BE(8, at);
      at = writeInt64(buf, r.seq, at);
      let latest = latestByDevice.get(r.deviceId);
      if (!latest) {
        latest = new Array<LatestValue | undefined>(metricNames.length);
        latestByDevice.set(r.deviceId, latest);
      }
      const values = r.values;
      for (let i = 0; i < metricNames.length; i++) {
        const v = values[metricNames[i]!];
        if (v === undefined) {
          at = buf.writeInt32BE(-1, at);
          continue;
        }
        at = buf.writeInt32BE(8, at);
        at = buf.writeDoubleBE(v, at);
        const cur = latest[i];
        if (!cur) latest[i] = { deviceId: r.deviceId, metric: metricNames[i]!, unitId: r.unitId, ts: r.ts, value: v };
        else if (cur.ts.getTime() < ms) {
          cur.ts = r.ts;
          cur.value = v;
          cur.unitId = r.unitId;
        }
      }
    }
    at = buf.writeInt16BE(-1, at);
    const latest: LatestValue[] = [];
    for (const deviceId of [...latestByDevice.keys()].sort()) {
      const perMetric = latestByDevice.get(deviceId)!.filter((l): l is LatestValue => l !== undefined);
      latest.push(...perMetric.sort((a, b) => (a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : 0)));
    }
    return { data: buf.subarray(0, at), latest };
  };
}
