import fc from 'fast-check';
import type pg from 'pg';
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
    const presence = createPresence({
      pool: f.flaky.pool,
      logger: testLogger,
      flushMs: 100,
      onChange: (c) => changes.push({ deviceId: c.deviceId, online: c.online }),
    });
    const online = async (): Promise<boolean | undefined> =>
      (
        await f.t.database.pool.query<{ online: boolean }>(
          `SELECT online FROM devices WHERE id = $1`,
          [f.deviceId],
        )
      ).rows[0]?.online;
    try {
      await f.proxy.cut();
      presence.connected(f.deviceId); // the device connects while the database is down: the write fails
      presence.seen(f.deviceId);
      await new Promise((r) => setTimeout(r, 500));
      expect(await online()).toBe(false);

      await f.proxy.restore();
      await waitFor('online written again', async () => (await online()) === true);
      expect(changes).toContainEqual({ deviceId: f.deviceId, online: true });
      const { rows } = await f.t.database.pool.query<{ last_seen_at: Date | null }>(
        `SELECT last_seen_at FROM devices WHERE id = $1`,
        [f.deviceId],
      );
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

describe('presence in batches', () => {
  let f: OutageFixture;
  const ids = Array.from({ length: 6 }, (_, i) => `bd-presence-batch-${i}`);
  beforeAll(async () => {
    f = await startOutageFixture('bd-presence-batch-0');
    for (const id of ids.slice(1))
      await f.t.database.pool.query(
        `INSERT INTO devices (id, unit_id, kind) SELECT $1, unit_id, kind FROM devices WHERE id = $2`,
        [id, ids[0]],
      );
  });
  afterAll(async () => {
    await f?.close();
  });

  it('writes any mix of connects and disconnects as the latest state of each device, in one statement per batch', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ device: fc.constantFrom(...ids), online: fc.boolean() }), {
          minLength: 1,
          maxLength: 40,
        }),
        async (events) => {
          const statements: string[] = [];
          const pool = f.t.database.pool;
          const counting: Pick<pg.Pool, 'query'> = {
            query: ((text: string, values?: unknown[]) => {
              statements.push(text);
              return pool.query(text, values);
            }) as pg.Pool['query'],
          };
          await pool.query(`UPDATE devices SET online = false`);
          const presence = createPresence({
            pool: counting,
            logger: testLogger,
            flushMs: 3_600_000,
            batchMs: 60_000,
          });
          const expected = new Map<string, boolean>();
          for (const e of events) {
            if (e.online) presence.connected(e.device);
            else presence.disconnected(e.device);
            expected.set(e.device, e.online);
          }
          await presence.stop(); // writes what is pending
          expect(statements).toHaveLength(1);
          const { rows } = await pool.query<{ id: string; online: boolean }>(
            `SELECT id, online FROM devices WHERE id = ANY($1::text[])`,
            [ids],
          );
          for (const row of rows) expect(row.online).toBe(expected.get(row.id) ?? false);
        },
      ),
      { numRuns: 25 },
    );
  }, 120_000);
});

describe('presence across gateway nodes', () => {
  let f: OutageFixture;
  beforeAll(async () => {
    f = await startOutageFixture('bd-presence-nodes');
  });
  afterAll(async () => {
    await f?.close();
  });
  const row = async (): Promise<{ online: boolean; node_id: string | null }> =>
    (
      await f.t.database.pool.query<{ online: boolean; node_id: string | null }>(
        `SELECT online, node_id FROM devices WHERE id = $1`,
        [f.deviceId],
      )
    ).rows[0]!;
  const node = (nodeId: string) =>
    createPresence({
      pool: f.t.database.pool,
      logger: testLogger,
      nodeId,
      clustered: true,
      flushMs: 3_600_000,
      batchMs: 3_600_000,
      heartbeatMs: 3_600_000,
    });

  it("a takeover [MQTT-3.1.4-2]: the old node's disconnect never overrides the new node's connect, in either order", async () => {
    for (const disconnectFirst of [false, true]) {
      const a = node('node-a');
      const b = node('node-b');
      b.connected(f.deviceId);
      await b.flush();
      expect(await row()).toEqual({ online: true, node_id: 'node-b' });
      a.connected(f.deviceId);
      b.disconnected(f.deviceId);
      if (disconnectFirst) {
        await b.flush();
        await a.flush();
      } else {
        await a.flush();
        await b.flush();
      }
      expect(await row()).toEqual({ online: true, node_id: 'node-a' });
      // Its own node's disconnect does set it offline.
      a.disconnected(f.deviceId);
      await a.flush();
      expect(await row()).toEqual({ online: false, node_id: null });
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('the devices of a node whose heartbeat stopped are set offline by a live node; a live node keeps its own', async () => {
    const dead = node('node-dead');
    await dead.reset();
    dead.connected(f.deviceId);
    await dead.flush();
    expect(await row()).toEqual({ online: true, node_id: 'node-dead' });
    const live = node('node-live');
    await live.reset(); // a sweep: node-dead's heartbeat is fresh, its device stays online
    expect(await row()).toEqual({ online: true, node_id: 'node-dead' });
    // node-dead stops answering (SIGKILL: no stop(), no last write): older than 3 heartbeats.
    await f.t.database.pool.query(
      `UPDATE gateway_nodes SET heartbeat_at = now() - interval '1 day' WHERE id = 'node-dead'`,
    );
    const changes: boolean[] = [];
    const other = createPresence({
      pool: f.t.database.pool,
      logger: testLogger,
      nodeId: 'node-other',
      clustered: true,
      heartbeatMs: 3_600_000,
      onChange: (c) => changes.push(c.online),
    });
    await other.reset();
    expect(await row()).toEqual({ online: false, node_id: null });
    expect(changes).toEqual([false]);
    const { rows } = await f.t.database.pool.query(`SELECT id FROM gateway_nodes ORDER BY id`);
    expect(rows.map((r: { id: string }) => r.id)).toEqual(['node-live', 'node-other']);
    await Promise.all([live.stop(), other.stop()]);
  });
});
