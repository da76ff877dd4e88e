import { beforeAll, describe, expect, it } from 'vitest';
import { asc } from 'drizzle-orm';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { testAuditPublicKeys, testAuditSigner } from '../test/audit-key.ts';
import { auditLog } from '../db/schema/index.ts';
import { createAuditLog } from './audit-service.ts';
import { GENESIS_HASH, signedEntryHash } from './audit-fns.ts';
import { verifyEntrySignature } from './audit-signer.ts';
import { verifyAuditChain } from './audit-verify.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});

describe('audit log', () => {
  it('signs and chains every entry at consecutive positions, even under concurrent appends and rolled-back ones', async () => {
    const audit = createAuditLog({ db: t.database.db, signer: testAuditSigner });
    const entry = (i: number) => ({
      actorId: 'user-1',
      actorRole: 'technician',
      action: 'device.update',
      targetType: 'device',
      targetId: `d${i}`,
      before: { status: 'pending' },
      after: { status: 'active' },
    });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        i % 4 === 3
          ? // A transaction that appends and then fails: its id is used up, its position is not.
            t.database.db
              .transaction(async (tx) => {
                await audit.record(entry(i), tx);
                throw new Error('rolled back');
              })
              .catch(() => undefined)
          : audit.record(entry(i)),
      ),
    );
    const rows = await t.database.db.select().from(auditLog).orderBy(asc(auditLog.seq));
    expect(rows).toHaveLength(15);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    // The ids have gaps (the sequence does not roll back), the positions do not.
    expect(rows[rows.length - 1]!.id).toBeGreaterThan(15);
    let prev: Buffer = GENESIS_HASH;
    for (const row of rows) {
      expect(row.prevHash.equals(prev)).toBe(true);
      expect(row.keyId).toBe(testAuditSigner.keyId);
      expect(
        signedEntryHash({ ...row, ip: row.ip ?? null, keyId: row.keyId! }, row.prevHash).equals(
          row.hash,
        ),
      ).toBe(true);
      expect(
        verifyEntrySignature(testAuditPublicKeys.get(row.keyId!)!, row.hash, row.signature!),
      ).toBe(true);
      prev = row.hash;
    }
    expect(
      await verifyAuditChain(t.database.db, { publicKeys: testAuditPublicKeys }),
    ).toMatchObject({ ok: true, checked: 15, legacy: 0 });
  });

  it('dates an entry no earlier than the one before it when the clock stepped back a little, but never follows a far-future date', async () => {
    const own = await createTestDatabase();
    const audit = createAuditLog({ db: own.database.db, signer: testAuditSigner });
    const entry = { actorId: 'u', actorRole: 'admin', action: 'site.update', targetType: 'site' };
    const last = async () =>
      (
        await own.database.pool.query<{ seq: number; at: Date }>(
          'SELECT seq, at FROM audit_log ORDER BY seq DESC LIMIT 1',
        )
      ).rows[0]!;
    // Move the head's time forward as a clock that was ahead would have written it (triggers off).
    const shiftHead = async (ms: number) => {
      const c = await own.database.pool.connect();
      try {
        await c.query('BEGIN');
        await c.query('SET LOCAL session_replication_role = replica');
        await c.query(
          `UPDATE audit_log SET at = now() + make_interval(secs => $1::double precision / 1000) WHERE seq = (SELECT max(seq) FROM audit_log)`,
          [ms],
        );
        await c.query('COMMIT');
      } finally {
        c.release();
      }
      return (await last()).at;
    };
    await audit.record(entry);
    const ahead = await shiftHead(2 * 60_000);
    await audit.record(entry);
    expect((await last()).at.getTime()).toBe(ahead.getTime());
    const farAhead = await shiftHead(86_400_000);
    await audit.record(entry);
    const after = (await last()).at.getTime();
    expect(after).toBeLessThan(farAhead.getTime() - 3_600_000);
    expect(Math.abs(after - Date.now())).toBeLessThan(3_600_000);
  });
});
