import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliRunner } from '../test/cli-runner.ts';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';

let t: TestDatabase;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'thamani-brokercli-'));
beforeAll(async () => {
  t = await createTestDatabase();
});

// In-process: the command's output, not the process boundary (cli/cli.test.ts does that).
const thamani = cliRunner(() => ({
  DATABASE_URL: t.url,
  THAMANI_DATA_DIR: dataDir,
  LOG_LEVEL: 'error',
  PKI_PASSPHRASE: 'broker cli passphrase',
}));

describe('thamani broker clients', () => {
  it('lists the devices the broker marked online, by site and unit, and nothing else', async () => {
    expect((await thamani('broker', 'clients')).stdout).toBe('No device is connected.\n');
    await thamani('site', 'add', 'Clients School');
    await thamani('unit', 'add', 'Clients School', 'Digester 1', '--kind', 'biodigester');
    for (const id of ['bd-clients-1', 'bd-clients-2'])
      await thamani('device', 'add', '--unit', 'Digester 1', '--id', id);
    const seen = new Date('2026-11-20T08:00:00Z');
    await t.database.pool.query(
      `UPDATE devices SET online = true, last_seen_at = $1 WHERE id = 'bd-clients-2'`,
      [seen],
    );
    const json = await thamani('broker', 'clients', '--json');
    expect(json.stderr).toBe('');
    expect(JSON.parse(json.stdout)).toEqual({
      connected: 1,
      clients: [
        {
          id: 'bd-clients-2',
          kind: 'biodigester',
          unit: 'Digester 1',
          site: 'Clients School',
          last_seen_at: seen.toISOString(),
        },
      ],
    });
    expect((await thamani('broker', 'clients')).stdout).toMatch(
      /^bd-clients-2\s+biodigester\s+Clients School \/ Digester 1 {2}last seen 2026-11-20T08:00:00.000Z\n1 connected\n$/,
    );
  });
});
