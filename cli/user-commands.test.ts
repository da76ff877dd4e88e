import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { buildCli } from './main.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
  process.env.DATABASE_URL = t.url;
  process.env.LOG_LEVEL = 'silent';
  process.env.THAMANI_PUBLIC_HOSTNAME = 'gw.example';
});
afterEach(() => vi.restoreAllMocks());

async function run(...args: string[]): Promise<string> {
  const out: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  await buildCli().parseAsync(['node', 'thamani', ...args]);
  vi.restoreAllMocks();
  return out.join('');
}

describe('thamani user', () => {
  it('adds a user with a setup link, lists and disables it; each step is audited', async () => {
    expect(await run('user', 'add', 'Jojo', '--role', 'collector')).toMatch(/created jojo \(collector.*\nsetup link .*: https:\/\/gw\.example:8443\/setup\?token=[\w-]{40,}\n/);
    expect(await run('user', 'list')).toMatch(/^jojo\tcollector\tactive\t/m);
    await run('user', 'disable', 'jojo');
    expect(await run('user', 'list')).toMatch(/^jojo\tcollector\tdisabled\t/m);
    await expect(run('user', 'add', 'x1x', '--role', 'king')).rejects.toThrow(/--role must be one of/);
    const { rows } = await t.database.pool.query<{ action: string; actor_id: string }>(`SELECT action, actor_id FROM audit_log ORDER BY id`);
    expect(rows.map((r) => r.action)).toEqual(['user.create', 'user.disable']);
    expect(rows[0]!.actor_id).toMatch(/^cli:/);
    expect(await run('audit', 'verify')).toMatch(/audit chain intact: 2 entries verified/);
  });
});
