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
    expect(await run('user', 'add', 'Jojo', '--role', 'collector')).toMatch(
      /created jojo \(collector.*\nsetup link .*: https:\/\/gw\.example:8443\/setup\?token=[\w-]{40,}\n/,
    );
    expect(await run('user', 'list')).toMatch(/^jojo\tcollector\tactive\t/m);
    await run('user', 'disable', 'jojo');
    expect(await run('user', 'list')).toMatch(/^jojo\tcollector\tdisabled\t/m);
    await expect(run('user', 'add', 'x1x', '--role', 'king')).rejects.toThrow(
      /--role must be one of/,
    );
    const { rows } = await t.database.pool.query<{ action: string; actor_id: string }>(
      `SELECT action, actor_id FROM audit_log ORDER BY id`,
    );
    expect(rows.map((r) => r.action)).toEqual(['user.create', 'user.disable']);
    expect(rows[0]!.actor_id).toMatch(/^cli:/);
    expect(await run('audit', 'verify')).toMatch(/audit chain intact: 2 entries verified/);
  });
});

describe('thamani user export and erase', () => {
  it('exports what is held about a user, then erases it: the list and the export say "erased user #N", the audit entries keep the id', async () => {
    await run(
      'user',
      'add',
      'Achieng',
      '--role',
      'technician',
      '--name',
      'Achieng Odhiambo',
      '--email',
      'achieng@example.org',
    );
    const before = JSON.parse(await run('user', 'export', 'achieng')) as {
      user: { id: string; displayName: string; email: string; number: number };
      auditEntriesAboutUser: { action: string }[];
    };
    expect(before.user).toMatchObject({
      displayName: 'Achieng Odhiambo',
      email: 'achieng@example.org',
    });
    expect(before.auditEntriesAboutUser.map((e) => e.action)).toEqual(['user.create']);
    expect(await run('user', 'erase', 'achieng')).toBe(
      `erased achieng: now erased user #${before.user.number} (id ${before.user.id})\n`,
    );
    expect(await run('user', 'list')).toMatch(
      new RegExp(
        `^erased-${before.user.id}\\ttechnician\\terased\\t${before.user.id}\\terased user #${before.user.number}$`,
        'm',
      ),
    );
    const after = JSON.parse(await run('user', 'export', before.user.id)) as {
      user: { displayName: string; email: string | null };
      auditEntriesAboutUser: { action: string }[];
    };
    expect(after.user).toMatchObject({
      displayName: `erased user #${before.user.number}`,
      email: null,
    });
    expect(after.auditEntriesAboutUser.map((e) => e.action)).toEqual(['user.create', 'user.erase']);
    await expect(run('user', 'erase', 'nobody-here')).rejects.toThrow(/no user nobody-here/);
  });
});

describe('thamani user assign', () => {
  it('gives a kitchen manager their digester by name, refuses unknown or ambiguous units, and can take all away', async () => {
    await run('site', 'add', 'Assign School');
    await run('site', 'add', 'Other School');
    await run('unit', 'add', 'Assign School', 'Digester 1', '--kind', 'biodigester');
    await run('unit', 'add', 'Other School', 'Digester 1', '--kind', 'biodigester');
    await run('user', 'add', 'wanjiru', '--role', 'kitchen_manager');
    await expect(run('user', 'assign', 'wanjiru', 'Digester 1')).rejects.toThrow(
      /used at .*: add --site/,
    );
    await expect(run('user', 'assign', 'wanjiru', 'Digester 9')).rejects.toThrow(
      /no unit Digester 9/,
    );
    expect(await run('user', 'assign', 'wanjiru', 'Digester 1', '--site', 'Assign School')).toBe(
      'wanjiru now sees: Digester 1 (Assign School)\n',
    );
    const { rows } = await t.database.pool.query<{ site: string }>(
      `SELECT s.name AS site FROM user_unit_assignments a JOIN users u ON u.id = a.user_id JOIN units n ON n.id = a.unit_id JOIN sites s ON s.id = n.site_id WHERE u.username = 'wanjiru'`,
    );
    expect(rows).toEqual([{ site: 'Assign School' }]);
    expect(await run('user', 'assign', 'wanjiru', 'none')).toBe('wanjiru sees no unit\n');
    expect((await t.database.pool.query(`SELECT 1 FROM user_unit_assignments`)).rowCount).toBe(0);
  });
});

describe('thamani user tokens', () => {
  it('lists every API token with its expiry (default from config), last use and state', async () => {
    process.env.API_TOKEN_DEFAULT_DAYS = '7';
    try {
      const made = JSON.parse(
        await run('user', 'token', 'scraper', '--role', 'technician', '--json'),
      ) as { id: string; expiresAt: string };
      const days = (new Date(made.expiresAt).getTime() - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(6.9);
      expect(days).toBeLessThanOrEqual(7);
      await t.database.pool.query(
        `UPDATE api_tokens SET last_used_at = '2026-01-02T03:04:05Z' WHERE id = $1`,
        [made.id],
      );
      const listed = await run('user', 'tokens');
      expect(listed).toMatch(/^id\tname\trole\towner\texpires\tlast used\tstate$/m);
      expect(listed).toMatch(
        new RegExp(
          `^${made.id}\\tscraper\\ttechnician\\t\\(cli:[^)]+\\)\\t${made.expiresAt}\\t2026-01-02T03:04:05.000Z\\tactive$`,
          'm',
        ),
      );
      await expect(
        run('user', 'token', 'forever', '--role', 'auditor', '--days', '366'),
      ).rejects.toMatchObject({ code: 'API_TOKEN_LIFETIME_TOO_LONG' });
    } finally {
      delete process.env.API_TOKEN_DEFAULT_DAYS;
    }
  });
});
