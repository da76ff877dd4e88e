import { beforeAll, describe, expect, it } from 'vitest';
import { asc } from 'drizzle-orm';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { auditLog } from '../db/schema/index.ts';
import { createAuditLog } from './audit-service.ts';
import { entryHash, GENESIS_HASH } from './audit-fns.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});

describe('audit log', () => {
  it('chains every entry to the one before it, even under concurrent appends', async () => {
    const audit = createAuditLog({ db: t.database.db });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        audit.record({ actorId: 'user-1', actorRole: 'technician', action: 'device.update', targetType: 'device', targetId: `d${i}`, before: { status: 'pending' }, after: { status: 'active' } }),
      ),
    );
    const rows = await t.database.db.select().from(auditLog).orderBy(asc(auditLog.id));
    expect(rows).toHaveLength(20);
    let prev: Buffer = GENESIS_HASH;
    for (const row of rows) {
      expect(row.prevHash.equals(prev)).toBe(true);
      expect(entryHash({ ...row, ip: row.ip ?? null }, row.prevHash).equals(row.hash)).toBe(true);
      prev = row.hash;
    }
  });
});
