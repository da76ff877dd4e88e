import { inject } from 'vitest';
import { createDatabase, type Database } from '../db/client.ts';
import { createAuditLog } from '../audit/index.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { testAuditSigner } from './audit-key.ts';
import { createTestDatabase, testLogger, type TestDatabase } from './db.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

/**
 * A test database reached two ways: directly (to arrange and check) and through a TCP proxy that
 * the test cuts and restores (the component under test sees the database go away and come back).
 * One registered device `deviceId` in a biodigester unit.
 */
export interface OutageFixture {
  t: TestDatabase;
  proxy: TcpProxy;
  /** A pool whose every connection goes through the proxy. */
  flaky: Database;
  deviceId: string;
  unitId: string;
  close(): Promise<void>;
}

export async function startOutageFixture(deviceId: string): Promise<OutageFixture> {
  const t = await createTestDatabase();
  const admin = new URL(inject('adminUrl'));
  const proxy = await startTcpProxy({ host: admin.hostname, port: Number(admin.port || 5432) });
  const flaky = createDatabase({ url: proxy.url(t.url), poolMax: 3, logger: testLogger });
  const devices = createDeviceService({
    db: t.database.db,
    audit: createAuditLog({ db: t.database.db, signer: testAuditSigner }),
  });
  const actor = { actorId: 'test', actorRole: 'admin' };
  const site = await devices.addSite({ name: `outage ${deviceId}` }, actor);
  const unit = await devices.addUnit({ site: site.id, kind: 'biodigester', name: 'D1' }, actor);
  await devices.addDevice({ id: deviceId, unit: unit.id }, actor);
  await t.database.pool.query(`UPDATE devices SET status = 'active' WHERE id = $1`, [deviceId]);
  return {
    t,
    proxy,
    flaky,
    deviceId,
    unitId: unit.id,
    async close() {
      await flaky.close().catch(() => undefined);
      await proxy.close();
    },
  };
}

export async function waitFor(
  what: string,
  probe: () => Promise<boolean> | boolean,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
