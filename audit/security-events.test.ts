import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { createAuditLog, createSecurityEvents, verifyAuditChain } from './index.ts';
import { testAuditPublicKeys, testAuditSigner } from '../test/audit-key.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});

describe('broker security events', () => {
  it('records a refused connection in the audit chain, and rate-limits repeats per client', async () => {
    let clock = 1_000_000;
    const events = createSecurityEvents({ audit: createAuditLog({ db: t.database.db, signer: testAuditSigner }), now: () => clock, windowMs: 60_000 });
    const refused = { type: 'connect_refused' as const, clientId: 'bio-001', deviceId: 'bio-001', remoteAddress: '127.0.0.1', certSerial: '0a1b', reason: 'certificate revoked' };
    expect(await events.record(refused)).toBe(true);
    for (let i = 0; i < 5; i++) expect(await events.record(refused)).toBe(false);
    clock += 60_001;
    expect(await events.record(refused)).toBe(true);
    const { rows } = await t.database.pool.query(`SELECT actor_id, actor_role, action, target_id, host(ip) AS ip, after FROM audit_log ORDER BY id`);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ actor_id: 'device:bio-001', actor_role: 'device', action: 'security.connect_refused', target_id: 'bio-001', ip: '127.0.0.1', after: { reason: 'certificate revoked', suppressedBefore: 0 } });
    expect(rows[1].after.suppressedBefore).toBe(5);
    expect((await verifyAuditChain(t.database.db, { publicKeys: testAuditPublicKeys })).ok).toBe(true);
  });
});
