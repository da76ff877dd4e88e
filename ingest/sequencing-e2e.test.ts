import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../audit/index.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { createQuarantineService } from './quarantine-service.ts';

/** What a device sees of the sequence rules (docs/device-contract.md, "Telemetry"), over mTLS. */

let f: BrokerFixture;
beforeAll(async () => {
  f = await startBrokerFixture({}, { ingest: { maxSeqJump: 1000 } });
});
afterAll(async () => {
  await f?.close();
});

const iso = (msAgo: number): string => new Date(Date.now() - msAgo).toISOString();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
type ErrorMessage = {
  quarantineIds: number[];
  reasons: { code: string; field: string; seq?: number }[];
};

async function device(
  id: string,
): Promise<{ client: MqttClient; errors: ErrorMessage[]; send(payload: unknown): Promise<void> }> {
  const client = await f.connect(await f.addDevice(id), { clientId: id });
  await client.subscribeAsync(`devices/${id}/errors`, { qos: 1 });
  const errors: ErrorMessage[] = [];
  client.on('message', (_t, p) => errors.push(JSON.parse(p.toString()) as ErrorMessage));
  return {
    client,
    errors,
    send: async (payload) =>
      void (await client.publishAsync(`devices/${id}/telemetry`, JSON.stringify(payload), {
        qos: 1,
      })),
  };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !check(); i++) await sleep(20);
}

const stored = async (id: string): Promise<[number, number | null][]> =>
  (
    await f.t.database.pool.query<{ seq: string; ph: number | null }>(
      `SELECT seq, ph FROM readings WHERE device_id = $1 ORDER BY ts`,
      [id],
    )
  ).rows.map((r) => [Number(r.seq), r.ph]);
const quarantined = async (id: string): Promise<[number | null, string][]> =>
  (
    await f.t.database.pool.query<{ seq: string | null; reasons: { code: string }[] }>(
      `SELECT seq, reasons FROM quarantine WHERE device_id = $1 ORDER BY id`,
      [id],
    )
  ).rows.map((r) => [r.seq === null ? null : Number(r.seq), r.reasons[0]!.code]);

describe('sequencing over mTLS', () => {
  it('quarantines a seq that jumps too far as SEQ_JUMP and tells the device; the readings after it are judged as if it never came', async () => {
    const id = 'bd-seq-jump';
    const d = await device(id);
    await d.send({ seq: 5, ts: iso(50_000), readings: { ph: 7.0 } });
    await d.send({ seq: Number.MAX_SAFE_INTEGER, ts: iso(40_000), readings: { ph: 7.1 } });
    await d.send({
      batch: [
        { seq: 6, ts: iso(30_000), readings: { ph: 7.2 } },
        { seq: 900, ts: iso(20_000), readings: { ph: 7.3 } },
      ],
    });
    await until(() => d.errors.length >= 1);
    await d.client.endAsync();
    expect(await stored(id)).toEqual([
      [5, 7.0],
      [6, 7.2],
      [900, 7.3],
    ]);
    expect(await quarantined(id)).toEqual([[Number.MAX_SAFE_INTEGER, 'SEQ_JUMP']]);
    expect(d.errors).toEqual([
      expect.objectContaining({
        reasons: [
          expect.objectContaining({ code: 'SEQ_JUMP', field: 'seq', seq: Number.MAX_SAFE_INTEGER }),
        ],
      }),
    ]);
  });

  it('stores one reading per instant: a re-send of it is a duplicate, another reading at that ts is TS_CONFLICT (told with its seq), none dropped silently', async () => {
    const id = 'bd-seq-samets';
    const d = await device(id);
    const ts = iso(60_000);
    // A coarse clock: three readings in one tick, one of them sent twice (a lost PUBACK).
    await d.send({
      batch: [
        { seq: 1, ts, readings: { ph: 7.0 } },
        { seq: 2, ts, readings: { ph: 7.1 } },
      ],
    });
    await d.send({ seq: 1, ts, readings: { ph: 7.0 } });
    await d.send({ seq: 3, ts, readings: { ph: 7.2 } });
    await d.send({ seq: 4, ts: iso(50_000), readings: { ph: 7.3 } });
    await until(() => d.errors.length >= 2);
    await d.client.endAsync();
    expect(await stored(id)).toEqual([
      [1, 7.0],
      [4, 7.3],
    ]);
    expect(await quarantined(id)).toEqual([
      [2, 'TS_CONFLICT'],
      [3, 'TS_CONFLICT'],
    ]);
    expect(d.errors.map((e) => e.reasons.map((r) => [r.code, r.seq]))).toEqual([
      [['TS_CONFLICT', 2]],
      [['TS_CONFLICT', 3]],
    ]);
    expect(d.errors.every((e) => e.quarantineIds.length === 1)).toBe(true);
    // A replay of a conflict meets the same stored reading: it stays rejected, not "replayed".
    const svc = createQuarantineService({
      db: f.t.database.db,
      ingest: f.ingest!,
      audit: createAuditLog({ db: f.t.database.db, signer: testAuditSigner }),
    });
    const [item] = await svc.list({ deviceId: id, status: 'open' });
    expect(
      await svc.replay(item!.id, { actorId: 'tech-1', actorRole: 'technician' }),
    ).toMatchObject({
      status: 'open',
      stored: 0,
      stillRejected: [expect.objectContaining({ code: 'TS_CONFLICT' })],
    });
    expect(await stored(id)).toEqual([
      [1, 7.0],
      [4, 7.3],
    ]);
  });

  it('lets SenML and JSON readings of one device coexist: SenML neither moves nor breaks the seq', async () => {
    const id = 'bd-seq-senml';
    const d = await device(id);
    const t = Math.floor(Date.now() / 1000);
    await d.send({ seq: 10, ts: iso(90_000), readings: { ph: 7.0 } });
    // SenML: its seq would be its time in ms, far past 10 (and past the jump bound).
    await d.send([{ bt: t - 80, n: 'ph', v: 7.1 }]);
    await d.send({ seq: 11, ts: iso(70_000), readings: { ph: 7.2 } });
    await d.send([{ bt: t - 100, n: 'ph', v: 7.3 }]); // an older SenML reading: stored too
    await d.client.endAsync();
    expect((await stored(id)).map(([, ph]) => ph)).toEqual([7.3, 7.0, 7.1, 7.2]);
    expect(await quarantined(id)).toEqual([]);
    expect(d.errors).toEqual([]);
  });

  it('recovers a device whose counter restarted: SEQ_REGRESSION until a technician runs reset-seq, then stored; the quarantined ones replay', async () => {
    const id = 'bd-seq-reset';
    const d = await device(id);
    await d.send({ seq: 500, ts: iso(120_000), readings: { ph: 7.0 } });
    // Factory reset: the counter starts again at 0.
    await d.send({ seq: 0, ts: iso(110_000), readings: { ph: 7.1 } });
    await d.send({ seq: 1, ts: iso(100_000), readings: { ph: 7.2 } });
    expect(await quarantined(id)).toEqual([
      [0, 'SEQ_REGRESSION'],
      [1, 'SEQ_REGRESSION'],
    ]);
    const audit = createAuditLog({ db: f.t.database.db, signer: testAuditSigner });
    await createDeviceService({ db: f.t.database.db, audit }).resetSequence(id, {
      actorId: 'tech-1',
      actorRole: 'technician',
    });
    // Delivered by NOTIFY: the next reading after it sets the baseline.
    for (let seq = 2; (await stored(id)).length < 2 && seq < 200; seq++) {
      await d.send({ seq, ts: iso(100_000 - seq * 100), readings: { ph: 7.3 } });
      await sleep(50);
    }
    await d.send({ seq: 300, ts: iso(50_000), readings: { ph: 7.4 } });
    await d.client.endAsync();
    const svc = createQuarantineService({ db: f.t.database.db, ingest: f.ingest!, audit });
    for (const item of await svc.list({ deviceId: id, status: 'open' }))
      await svc.replay(item.id, { actorId: 'tech-1', actorRole: 'technician' });
    const rows = await stored(id);
    expect(rows.map(([seq]) => seq).slice(0, 3)).toEqual([500, 0, 1]);
    expect(rows.at(-1)).toEqual([300, 7.4]);
    expect((await svc.list({ deviceId: id, status: 'open' })).length).toBe(0);
    const { rows: a } = await f.t.database.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_log WHERE action = 'device.sequence_reset' AND target_id = $1`,
      [id],
    );
    expect(a[0]!.n).toBe(1);
  });
});
