import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, testLogger, type TestDatabase } from '../test/db.ts';
import { waitFor } from '../test/wait.ts';
import { createClusterBus, type ClusterBus } from './cluster-bus.ts';

describe('the cluster bus (LISTEN/NOTIFY)', () => {
  let t: TestDatabase;
  let a: ClusterBus;
  let b: ClusterBus;
  const got: { node: string; body: unknown }[] = [];
  const relistened: string[] = [];

  beforeAll(async () => {
    t = await createTestDatabase();
    const open = (name: string) => {
      const bus = createClusterBus({
        url: t.url,
        pool: t.database.pool,
        logger: testLogger,
        maxDelayMs: 200,
      });
      bus.on('alert-rules', (body) => got.push({ node: name, body }));
      bus.onRelisten(() => relistened.push(name));
      return bus;
    };
    a = open('a');
    b = open('b');
    await Promise.all([a.ready, b.ready]);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('hands a message to the other nodes, not back to its sender', async () => {
    await a.send('alert-rules', { n: 1 });
    await waitFor('b to hear it', () => got.some((g) => g.node === 'b'));
    // A NOTIFY reaches every listener in commit order: once b has a later one, a had its chance.
    await b.send('alert-rules', { n: 2 });
    await waitFor('a to hear b', () => got.some((g) => g.node === 'a'));
    expect(got).toEqual([
      { node: 'b', body: { n: 1 } },
      { node: 'a', body: { n: 2 } },
    ]);
    expect(relistened).toEqual([]);
  });

  it('sent in a transaction: heard at its commit, by its own node too when asked, never if it rolls back', async () => {
    got.length = 0;
    const c = await t.database.pool.connect();
    try {
      await c.query('BEGIN');
      await a.send('alert-rules', { n: 'rolled back' }, { via: c, toSelf: true });
      await c.query('ROLLBACK');
      await c.query('BEGIN');
      await a.send('alert-rules', { n: 'committed' }, { via: c, toSelf: true });
      // Not before the commit: a later message sent outside it arrives first.
      await b.send('alert-rules', { n: 'marker' });
      await waitFor('a to hear the marker', () => got.some((g) => g.node === 'a'));
      expect(got).toEqual([{ node: 'a', body: { n: 'marker' } }]);
      await c.query('COMMIT');
    } finally {
      c.release();
    }
    await waitFor('both to hear the commit', () => got.length === 3);
    expect(got.slice(1).sort((x, y) => x.node.localeCompare(y.node))).toEqual([
      { node: 'a', body: { n: 'committed' } },
      { node: 'b', body: { n: 'committed' } },
    ]);
  });

  it('says when it listens again after its connection was lost, and hears what is sent after', async () => {
    got.length = 0;
    const killed = await t.database.pool.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'thamani-cluster-bus'`,
    );
    expect(killed.rows[0]!.n).toBe(2);
    await waitFor('both to listen again', () => relistened.length === 2);
    expect(relistened.sort()).toEqual(['a', 'b']);
    expect(a.listening() && b.listening()).toBe(true);
    await a.send('alert-rules', { n: 3 });
    await waitFor('b to hear it', () => got.length === 1);
    expect(got).toEqual([{ node: 'b', body: { n: 3 } }]);
  });
});
