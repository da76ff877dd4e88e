import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testLogger } from '../test/db.ts';
import { startOutageFixture, waitFor, type OutageFixture } from '../test/outage-fixture.ts';
import { createPresence } from './presence.ts';

describe('presence across a database outage', () => {
  let f: OutageFixture;
  beforeAll(async () => {
    f = await startOutageFixture('bd-presence-outage');
  });
  afterAll(async () => {
    await f?.close();
  });

  it('writes online again from the live sessions once the database answers', async () => {
    const changes: { deviceId: string; online: boolean }[] = [];
    const presence = createPresence({ pool: f.flaky.pool, logger: testLogger, flushMs: 100, onChange: (c) => changes.push({ deviceId: c.deviceId, online: c.online }) });
    const online = async (): Promise<boolean | undefined> => (await f.t.database.pool.query<{ online: boolean }>(`SELECT online FROM devices WHERE id = $1`, [f.deviceId])).rows[0]?.online;
    try {
      await f.proxy.cut();
      presence.connected(f.deviceId); // the device connects while the database is down: the write fails
      presence.seen(f.deviceId);
      await new Promise((r) => setTimeout(r, 500));
      expect(await online()).toBe(false);

      await f.proxy.restore();
      await waitFor('online written again', async () => (await online()) === true);
      expect(changes).toContainEqual({ deviceId: f.deviceId, online: true });
      const { rows } = await f.t.database.pool.query<{ last_seen_at: Date | null }>(`SELECT last_seen_at FROM devices WHERE id = $1`, [f.deviceId]);
      expect(rows[0]?.last_seen_at).not.toBeNull();

      // And the other way round: a disconnect during an outage is not left as "online".
      await f.proxy.cut();
      presence.disconnected(f.deviceId);
      await new Promise((r) => setTimeout(r, 300));
      await f.proxy.restore();
      await waitFor('offline written again', async () => (await online()) === false);
    } finally {
      await presence.stop().catch(() => undefined);
    }
  }, 60_000);
});
