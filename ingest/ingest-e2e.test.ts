import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';
import { waitFor } from '../test/wait.ts';
import { ingestCanWrite } from '../app/database.ts';

let f: BrokerFixture;
beforeAll(async () => {
  f = await startBrokerFixture({}, { ingest: {} });
});
afterAll(async () => {
  await f?.close();
});

const iso = (msAgo: number): string => new Date(Date.now() - msAgo).toISOString();

async function deviceWithErrors(id: string) {
  const cert = await f.addDevice(id);
  const client = await f.connect(cert, { clientId: id });
  await client.subscribeAsync(`devices/${id}/errors`, { qos: 1 });
  const errors: { reasons: { code: string; field: string }[]; quarantineIds: number[] }[] = [];
  client.on('message', (_t, p) => errors.push(JSON.parse(p.toString()) as (typeof errors)[number]));
  return { client, errors };
}

describe('ingest over mTLS', () => {
  it('stores valid readings (single, batch, SenML) and keeps the latest state', async () => {
    const { client } = await deviceWithErrors('bd-ing-ok');
    await client.publishAsync(
      'devices/bd-ing-ok/telemetry',
      JSON.stringify({
        seq: 1,
        ts: iso(120_000),
        readings: { temperature_c: 36.1, ph: 7.0, methane_pct: 58 },
      }),
      { qos: 1 },
    );
    await client.publishAsync(
      'devices/bd-ing-ok/telemetry',
      JSON.stringify({
        batch: [2, 3, 4].map((seq) => ({
          seq,
          ts: iso(100_000 - seq * 1000),
          readings: { temperature_c: 36 + seq / 10 },
        })),
      }),
      { qos: 1 },
    );
    const t = Math.floor(Date.now() / 1000) - 10;
    await client.publishAsync(
      'devices/bd-ing-ok/telemetry',
      JSON.stringify([
        { bt: t, n: 'ph', v: 7.2 },
        { n: 'battery_v', v: 3.9 },
      ]),
      { qos: 1 },
    );
    await client.endAsync();
    const { rows } = await f.t.database.pool.query(
      `SELECT seq, temperature_c, ph FROM readings WHERE device_id = 'bd-ing-ok' ORDER BY ts`,
    );
    expect(rows.map((r) => Number(r.seq))).toEqual([1, 2, 3, 4, t * 1000]);
    const latest = await f.t.database.pool.query(
      `SELECT metric, value FROM latest_readings WHERE device_id = 'bd-ing-ok' ORDER BY metric`,
    );
    expect(Object.fromEntries(latest.rows.map((r) => [r.metric, r.value]))).toEqual({
      battery_v: 3.9,
      methane_pct: 58,
      ph: 7.2,
      temperature_c: 36.4,
    });
  });

  it('quarantines each kind of bad input with the right reason, and tells the device', async () => {
    const { client, errors } = await deviceWithErrors('bd-ing-bad');
    const bad: [string, string][] = [
      ['{"seq": 1, "ts": ', 'MALFORMED_JSON'],
      [JSON.stringify({ seq: 2, ts: iso(0), readings: { co2_ppm: 4 } }), 'UNKNOWN_METRIC'],
      [JSON.stringify({ seq: 3, ts: iso(0), readings: { ph: 19 } }), 'OUT_OF_RANGE'],
      [JSON.stringify({ seq: 4, ts: iso(-3_600_000), readings: { ph: 7 } }), 'TS_FUTURE'],
      [JSON.stringify({ seq: 5, ts: iso(30 * 86_400_000), readings: { ph: 7 } }), 'TS_TOO_OLD'],
      [
        JSON.stringify({
          batch: Array.from({ length: 501 }, (_, i) => ({
            seq: i,
            ts: iso(i),
            readings: { ph: 7 },
          })),
        }),
        'BATCH_TOO_LARGE',
      ],
      [JSON.stringify({ seq: 7, ts: iso(0), readings: { ph: 'seven' } }), 'WRONG_TYPE'],
    ];
    for (const [payload] of bad)
      await client.publishAsync('devices/bd-ing-bad/telemetry', payload, { qos: 1 });
    await waitFor(
      'an error message for each bad payload',
      () => errors.length,
      (n) => n >= bad.length,
    );
    await client.endAsync();
    const { rows } = await f.t.database.pool.query(
      `SELECT reasons, payload_size FROM quarantine WHERE device_id = 'bd-ing-bad' ORDER BY id`,
    );
    expect(rows.map((r: { reasons: { code: string }[] }) => r.reasons[0]!.code)).toEqual(
      bad.map(([, code]) => code),
    );
    expect(errors.map((e) => e.reasons[0]!.code)).toEqual(bad.map(([, code]) => code));
    expect(errors.every((e) => e.quarantineIds.length === 1)).toBe(true);
    expect(
      (
        await f.t.database.pool.query(
          `SELECT count(*)::int AS n FROM readings WHERE device_id = 'bd-ing-bad'`,
        )
      ).rows[0].n,
    ).toBe(0);
  });

  it('acknowledges a duplicate and stores it once; a new reading with a seq that went back is quarantined', async () => {
    const { client } = await deviceWithErrors('bd-ing-dup');
    const reading = JSON.stringify({ seq: 10, ts: iso(60_000), readings: { ph: 7.1 } });
    await client.publishAsync('devices/bd-ing-dup/telemetry', reading, { qos: 1 });
    await client.publishAsync('devices/bd-ing-dup/telemetry', reading, { qos: 1 });
    await client.publishAsync(
      'devices/bd-ing-dup/telemetry',
      JSON.stringify({ seq: 9, ts: iso(30_000), readings: { ph: 7.2 } }),
      { qos: 1 },
    );
    await client.endAsync();
    expect(
      (
        await f.t.database.pool.query(
          `SELECT count(*)::int AS n FROM readings WHERE device_id = 'bd-ing-dup'`,
        )
      ).rows[0].n,
    ).toBe(1);
    const q = await f.t.database.pool.query(
      `SELECT reasons FROM quarantine WHERE device_id = 'bd-ing-dup'`,
    );
    expect(q.rows.map((r: { reasons: { code: string }[] }) => r.reasons[0]!.code)).toEqual([
      'SEQ_REGRESSION',
    ]);
    expect(f.ingest!.counters.duplicates).toBeGreaterThanOrEqual(1);
  });

  it('never sends the PUBACK before the commit', async () => {
    const { client } = await deviceWithErrors('bd-ing-hold');
    const blocker = new pg.Client({ connectionString: f.t.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE readings IN ACCESS EXCLUSIVE MODE');
    let acked = false;
    const publish = client
      .publishAsync(
        'devices/bd-ing-hold/telemetry',
        JSON.stringify({ seq: 1, ts: iso(1000), readings: { ph: 7 } }),
        { qos: 1 },
      )
      .then(() => (acked = true));
    await new Promise((r) => setTimeout(r, 1000));
    expect(acked).toBe(false); // the transaction cannot commit while the table is locked
    await blocker.query('ROLLBACK');
    await blocker.end();
    await publish;
    expect(acked).toBe(true);
    expect(
      (
        await f.t.database.pool.query(
          `SELECT count(*)::int AS n FROM readings WHERE device_id = 'bd-ing-hold'`,
        )
      ).rows[0].n,
    ).toBe(1);
    await client.endAsync();
  });

  it('refuses UPDATE and DELETE of stored readings, even for the table owner', async () => {
    await expect(
      f.t.database.pool.query(`UPDATE readings SET ph = 1 WHERE device_id = 'bd-ing-ok'`),
    ).rejects.toThrow(/immutable/);
    await expect(
      f.t.database.pool.query(`DELETE FROM readings WHERE device_id = 'bd-ing-ok'`),
    ).rejects.toThrow(/immutable/);
    await expect(f.t.database.pool.query(`TRUNCATE readings`)).rejects.toThrow(/immutable/);
  });

  it('writes as a role that may only append: it cannot change readings, lift the triggers, or touch other tables', async () => {
    const as = f.ingestDb!.pool;
    // What ingest does, it may do (the e2e tests above wrote through this very pool).
    expect(
      (await as.query(`SELECT count(*)::int AS n FROM readings WHERE device_id = 'bd-ing-ok'`))
        .rows[0].n,
    ).toBeGreaterThan(0);
    // Refused by privileges, before any trigger: the role is neither owner nor granted UPDATE/DELETE.
    for (const sql of [
      `UPDATE readings SET ph = 1 WHERE device_id = 'bd-ing-ok'`,
      `DELETE FROM readings WHERE device_id = 'bd-ing-ok'`,
      `TRUNCATE readings`,
      `UPDATE quarantine SET status = 'replayed'`,
      `DELETE FROM quarantine`,
      `DELETE FROM latest_readings`,
      `UPDATE audit_log SET action = 'x'`,
      `SELECT count(*) FROM users`,
      `UPDATE devices SET status = 'active'`,
      `INSERT INTO certificates (serial) VALUES ('00')`,
    ]) {
      await expect(as.query(sql), sql).rejects.toThrow(/permission denied/);
    }
    // Only the owner may alter or drop the table (or switch its immutability triggers off).
    for (const sql of [
      `ALTER TABLE readings DISABLE TRIGGER readings_immutable_rows`,
      `DROP TABLE readings`,
      `ALTER TABLE readings DISABLE ROW LEVEL SECURITY`,
    ]) {
      await expect(as.query(sql), sql).rejects.toThrow(/must be owner/);
    }
    expect(
      (
        await f.t.database.pool.query(
          `SELECT count(*)::int AS n FROM readings WHERE device_id = 'bd-ing-ok'`,
        )
      ).rows[0].n,
    ).toBeGreaterThan(0);
  });

  it('reports ingest not ready when its role may not write (the /readyz probe)', async () => {
    expect(await ingestCanWrite(f.ingestDb!.pool)).toBe(true);
    await f.t.database.pool.query(`REVOKE INSERT ON quarantine FROM thamani_ingest`);
    try {
      expect(await ingestCanWrite(f.ingestDb!.pool)).toBe(false);
    } finally {
      await f.t.database.pool.query(`GRANT INSERT ON quarantine TO thamani_ingest`);
    }
    expect(await ingestCanWrite(f.ingestDb!.pool)).toBe(true);
  });
});

describe('PUBACK order', () => {
  let g: BrokerFixture;
  beforeAll(async () => {
    // One publish per commit, no wait: a device's publishes go to separate, concurrent commits.
    g = await startBrokerFixture({}, { ingest: { batchMaxRows: 1, batchMaxWaitMs: 0 } });
  });
  afterAll(async () => {
    await g?.close();
  });

  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const count = async (sql: string, params: unknown[]): Promise<number> =>
    (await g.t.database.pool.query<{ n: number }>(sql, params)).rows[0]!.n;
  const storedOf = (id: string): Promise<number> =>
    count(`SELECT count(*)::int AS n FROM readings WHERE device_id = $1`, [id]);
  const insertsWaitingOn = (table: string): Promise<number> =>
    count(
      `SELECT count(*)::int AS n FROM pg_locks WHERE database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND relation = $1::regclass AND NOT granted`,
      [table],
    );
  /** `f` polled until it is not 0: its answer. */
  const eventually = (f: () => Promise<number>): Promise<number> =>
    waitFor('a count above 0', f, (n) => n !== 0);
  /** An open transaction that makes inserts into `table` wait (reads do not); ROLLBACK lets them go. */
  async function holdInserts(table: string): Promise<pg.Client> {
    const blocker = new pg.Client({ connectionString: g.t.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query(`LOCK TABLE ${table} IN SHARE MODE`);
    return blocker;
  }

  it('takes a re-send for the duplicate it is while its original is still committing, not for a seq regression', async () => {
    const id = 'bd-ing-resend';
    const client = await g.connect(await g.addDevice(id), { clientId: id });
    const errors: string[] = [];
    await client.subscribeAsync(`devices/${id}/errors`, { qos: 1 });
    client.on('message', (_t, p) => errors.push(p.toString()));
    const topic = `devices/${id}/telemetry`;
    const reading = JSON.stringify({ seq: 5, ts: iso(2000), readings: { ph: 7.3 } });
    // The original's commit stays open: its insert waits on the lock.
    const blocker = await holdInserts('readings');
    try {
      const original = client.publishAsync(topic, reading, { qos: 1 });
      expect(await eventually(() => insertsWaitingOn('readings'))).toBe(1);
      // The same reading again (a device that re-sends after a lost PUBACK), in a commit of its own.
      const resend = client.publishAsync(topic, reading, { qos: 1 });
      await sleep(300);
      await blocker.query('ROLLBACK');
      await Promise.all([original, resend]);
    } finally {
      await blocker.end();
    }
    await sleep(200);
    await client.endAsync();
    expect(await storedOf(id)).toBe(1);
    expect(
      await count(`SELECT count(*)::int AS n FROM quarantine WHERE device_id = $1`, [id]),
    ).toBe(0);
    expect(errors).toEqual([]);
  });

  it('acknowledges a device’s publishes in the order it sent them, even when a later one commits first [MQTT-4.6.0-2]', async () => {
    const id = 'bd-ing-order';
    const client = await g.connect(await g.addDevice(id), { clientId: id });
    const topic = `devices/${id}/telemetry`;
    // The first publish is malformed: its quarantine record cannot be written while the table is locked.
    const blocker = await holdInserts('quarantine');
    try {
      const acks: number[] = [];
      const first = client
        .publishAsync(topic, '{"seq": 1, "ts": ', { qos: 1 })
        .then(() => acks.push(1));
      expect(await eventually(() => insertsWaitingOn('quarantine'))).toBe(1);
      // The second is a valid reading: it commits at once, in a commit of its own…
      const second = client
        .publishAsync(topic, JSON.stringify({ seq: 2, ts: iso(1000), readings: { ph: 7 } }), {
          qos: 1,
        })
        .then(() => acks.push(2));
      expect(await eventually(() => storedOf(id))).toBe(1);
      await sleep(300);
      // …but its PUBACK waits for the first one's.
      expect(acks).toEqual([]);
      await blocker.query('ROLLBACK');
      await Promise.all([first, second]);
      expect(acks).toEqual([1, 2]);
    } finally {
      await blocker.end();
    }
    await client.endAsync();
  });
});
