import { describe, expect, it } from 'vitest';
import { createDatabase } from './client.ts';
import { createTestDatabase, testLogger } from '../test/db.ts';

const t = await createTestDatabase();

describe('createDatabase().close()', () => {
  it('returns once every client of the pool, idle or released during the close, has ended its connection', async () => {
    const database = createDatabase({ url: t.url, poolMax: 4, logger: testLogger });
    const clients = await Promise.all([1, 2, 3, 4].map(() => database.pool.connect()));
    const ended = clients.map(() => false);
    clients.forEach((c, i) =>
      c.on('end', () => {
        ended[i] = true;
      }),
    );
    for (const c of clients) await c.query('SELECT 1');
    // Three idle, one still checked out when the close starts and released during it.
    clients.slice(0, 3).forEach((c) => c.release());
    const closing = database.close();
    setImmediate(() => clients[3]!.release());
    await closing;
    expect(ended).toEqual([true, true, true, true]);
    // Closing twice is harmless.
    await database.close();
  });

  it('closes a pool that never connected at once', async () => {
    const database = createDatabase({ url: t.url, poolMax: 2, logger: testLogger });
    await database.close();
    expect(database.pool.totalCount).toBe(0);
  });
});
