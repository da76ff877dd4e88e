import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../audit/index.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';
import { createQuarantineService } from './quarantine-service.ts';

let f: BrokerFixture;
beforeAll(async () => {
  f = await startBrokerFixture({}, { ingest: {} });
});
afterAll(async () => {
  await f?.close();
});

describe('quarantine replay', () => {
  it('stores a quarantined reading once the rule it broke no longer applies, and audits it', async () => {
    const cert = await f.addDevice('bd-q-replay');
    const client = await f.connect(cert, { clientId: 'bd-q-replay' });
    const ts = new Date(Date.now() - 60_000).toISOString();
    // A batch: the first reading is fine, the second has an out-of-range pH.
    await client.publishAsync(
      'devices/bd-q-replay/telemetry',
      JSON.stringify({
        batch: [
          { seq: 1, ts, readings: { ph: 7 } },
          { seq: 2, ts: new Date(Date.now() - 30_000).toISOString(), readings: { ph: 15 } },
        ],
      }),
      { qos: 1 },
    );
    // The device moves on before anyone looks at the quarantine.
    await client.publishAsync(
      'devices/bd-q-replay/telemetry',
      JSON.stringify({
        seq: 50,
        ts: new Date(Date.now() - 1000).toISOString(),
        readings: { ph: 7.1 },
      }),
      { qos: 1 },
    );
    await client.endAsync();
    const svc = createQuarantineService({
      db: f.t.database.db,
      ingest: f.ingest!,
      audit: createAuditLog({ db: f.t.database.db, signer: testAuditSigner }),
    });
    const [item] = await svc.list({ deviceId: 'bd-q-replay', status: 'open' });
    expect(item).toMatchObject({
      batchIndex: 1,
      seq: 2,
      reasons: [{ code: 'OUT_OF_RANGE', field: 'batch[1].readings.ph' }],
    });

    // Still out of range under today's rules: it stays quarantined (as a new open item).
    const again = await svc.replay(item!.id, { actorId: 'tech-1', actorRole: 'technician' });
    expect(again).toMatchObject({
      status: 'open',
      stored: 0,
      stillRejected: [expect.objectContaining({ code: 'OUT_OF_RANGE' })],
    });

    // After a rule change (simulated here by fixing the stored payload's value), it replays.
    const [reopened] = await svc.list({ deviceId: 'bd-q-replay', status: 'open' });
    await f.t.database.pool.query(
      `UPDATE quarantine SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '"ph":15', '"ph":7.4'), 'UTF8') WHERE id = $1`,
      [reopened!.id],
    );
    const done = await svc.replay(reopened!.id, { actorId: 'tech-1', actorRole: 'technician' });
    expect(done).toMatchObject({ status: 'replayed', stored: 1 });
    expect(
      await svc
        .replay(reopened!.id, { actorId: 'tech-1', actorRole: 'technician' })
        .catch((e: { code: string }) => e.code),
    ).toBe('QUARANTINE_NOT_OPEN');
    const { rows } = await f.t.database.pool.query(
      `SELECT seq, ph FROM readings WHERE device_id = 'bd-q-replay' ORDER BY seq`,
    );
    expect(rows.map((r: { seq: string; ph: number }) => [Number(r.seq), r.ph])).toEqual([
      [1, 7],
      [2, 7.4],
      [50, 7.1],
    ]);
    const audit = await f.t.database.pool.query(
      `SELECT count(*)::int AS n FROM audit_log WHERE action = 'quarantine.replay' AND actor_id = 'tech-1'`,
    );
    expect(audit.rows[0].n).toBe(2);
  });
});
