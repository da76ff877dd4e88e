import { randomUUID } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { from as copyFrom } from 'pg-copy-streams';
import { beforeAll, describe, expect, it } from 'vitest';
import { metricNames } from '../devices/metrics.ts';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { createCopyEncoder, type EncodableRow } from './copy-binary.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});

describe('binary COPY encoder', () => {
  it('round-trips edge values through PostgreSQL exactly', async () => {
    const unitId = randomUUID();
    const rows: EncodableRow[] = [
      {
        deviceId: 'bd-cb-1',
        unitId,
        seq: 0,
        ts: new Date(Date.now() - 60_001),
        values: { temperature_c: -40, rssi_dbm: -150, battery_v: 3.3 },
      },
      {
        deviceId: 'bd-cb-1',
        unitId,
        seq: Number.MAX_SAFE_INTEGER,
        ts: new Date(Date.now() - 58_001),
        values: { temperature_c: 36.6, h2s_ppm: 1e-7 },
      },
      {
        deviceId: 'cp-cb-ünï',
        unitId: randomUUID().toUpperCase(),
        seq: 4_294_967_297,
        ts: new Date(Date.now() - 86_400_123),
        values: { lid_open: 1, weight_kg: 4999.999 },
      },
    ];
    const { columns, data, latest } = createCopyEncoder()(rows);
    expect(columns).toEqual([
      'temperature_c',
      'h2s_ppm',
      'weight_kg',
      'lid_open',
      'battery_v',
      'rssi_dbm',
    ]); // only those present, catalogue order
    const client = await t.database.pool.connect();
    try {
      await pipeline(
        Readable.from([data]),
        client.query(
          copyFrom(
            `COPY readings (ts, device_id, unit_id, seq, ${columns.join(', ')}) FROM STDIN (FORMAT binary)`,
          ),
        ),
      );
    } finally {
      client.release();
    }
    const { rows: back } = await t.database.pool.query(
      `SELECT ts, device_id, unit_id, seq::text, ${metricNames.join(', ')} FROM readings WHERE device_id LIKE '%-cb-%' ORDER BY seq::numeric`,
    );
    expect(back).toHaveLength(3);
    for (const [i, r] of [...rows].sort((a, b) => a.seq - b.seq).entries()) {
      const b = back[i] as Record<string, unknown>;
      expect(b.device_id).toBe(r.deviceId);
      expect(b.unit_id).toBe(r.unitId.toLowerCase());
      expect(b.seq).toBe(String(r.seq));
      expect((b.ts as Date).toISOString()).toBe(r.ts.toISOString());
      for (const m of metricNames) expect(b[m]).toBe(r.values[m] ?? null);
    }
    // The newest value per device and metric, sorted by device then metric.
    expect(latest.map((l) => `${l.deviceId}:${l.metric}=${l.value}`)).toEqual([
      'bd-cb-1:battery_v=3.3',
      'bd-cb-1:h2s_ppm=1e-7',
      'bd-cb-1:rssi_dbm=-150',
      'bd-cb-1:temperature_c=36.6',
      'cp-cb-ünï:lid_open=1',
      'cp-cb-ünï:weight_kg=4999.999',
    ]);
  });
});
