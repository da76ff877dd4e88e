import pg from 'pg';
import { afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { withDatabase } from '../test/global-setup.ts';
import { createApiHarness, type ApiHarness } from '../test/api-harness.ts';
import { buildCli } from '../cli/main.ts';
import { entryHash, GENESIS_HASH } from './audit-fns.ts';
import { createAuditLog, verifyAuditChain } from './index.ts';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';

let h: ApiHarness;
let t: TestDatabase;
let auditor: { authorization: string };
const actor = { actorId: 'u1', actorRole: 'technician', ip: '::FFFF:127.0.0.1', userAgent: 'test', requestId: 'r1' };

beforeAll(async () => {
  h = await createApiHarness();
  t = await createTestDatabase();
  auditor = { authorization: `Bearer ${await h.tokenFor('auditor')}` };
  for (let i = 0; i < 5; i++) await h.audit.record({ ...actor, action: 'device.update', targetType: 'device', targetId: `d${i}`, before: { status: 'pending', n: i }, after: { status: 'active', n: i } });
});

/** The superuser on this test database: what an attacker with full database access holds. */
async function superuser<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: withDatabase(inject('adminUrl'), h.t.name) });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const verify = async (): Promise<{ ok: boolean; checked: number; firstBroken?: { id: number; reason: string } }> =>
  (await h.app.inject({ method: 'GET', url: '/api/v1/audit/verify', headers: auditor })).json();

describe('append-only audit store', () => {
  it('refuses UPDATE, DELETE and TRUNCATE even for the superuser owner', async () => {
    await superuser(async (c) => {
      await expect(c.query(`UPDATE audit_log SET action = 'x' WHERE id = 1`)).rejects.toThrow(/append-only: UPDATE refused/);
      await expect(c.query(`DELETE FROM audit_log WHERE id = 1`)).rejects.toThrow(/append-only: DELETE refused/);
      await expect(c.query(`TRUNCATE audit_log`)).rejects.toThrow(/append-only: TRUNCATE refused/);
      // The retention switch alone is not enough: entries younger than 7 years stay.
      await c.query('BEGIN');
      await c.query(`SELECT set_config('thamani.audit_retention', 'on', true)`);
      await expect(c.query(`DELETE FROM audit_log WHERE id = 1`)).rejects.toThrow(/younger than 7 years/);
      await c.query('ROLLBACK');
      await expect(c.query(`SELECT audit_log_apply_retention(interval '1 year')`)).rejects.toThrow(/at least 7 years/);
    });
    // 5 device entries plus the creation of the auditor's API token.
    expect(await verify()).toMatchObject({ ok: true, checked: 6 });
  });

  it('lists with filters and pagination, and exports NDJSON', async () => {
    type Page = { entries: { targetId: string }[]; nextBeforeId: number };
    const page1 = (await h.app.inject({ method: 'GET', url: '/api/v1/audit?action=device.update&limit=2', headers: auditor })).json<Page>();
    expect(page1.entries.map((e) => e.targetId)).toEqual(['d4', 'd3']);
    expect(page1.entries[0]).toMatchObject({ actorId: 'u1', actorRole: 'technician', ip: '::ffff:127.0.0.1', userAgent: 'test', requestId: 'r1', before: { status: 'pending', n: 4 }, after: { status: 'active', n: 4 } });
    const page2 = (await h.app.inject({ method: 'GET', url: `/api/v1/audit?action=device.update&limit=2&beforeId=${page1.nextBeforeId}`, headers: auditor })).json<Page>();
    expect(page2.entries.map((e) => e.targetId)).toEqual(['d2', 'd1']);
    const exported = await h.app.inject({ method: 'GET', url: '/api/v1/audit/export?targetType=device', headers: auditor });
    expect(exported.headers['content-type']).toMatch(/application\/x-ndjson/);
    const lines = exported.body.trim().split('\n').map((l) => JSON.parse(l) as { targetId: string; prevHash: string; hash: string });
    expect(lines.map((l) => l.targetId)).toEqual(['d0', 'd1', 'd2', 'd3', 'd4']);
    expect(lines[1]!.prevHash).toBe(lines[0]!.hash);
  });

  it('detects a row altered directly in the database (triggers disabled) and names it', async () => {
    const victim = (await h.t.database.pool.query(`SELECT id FROM audit_log WHERE target_id = 'd2'`)).rows[0].id as number;
    await superuser(async (c) => {
      await c.query('ALTER TABLE audit_log DISABLE TRIGGER ALL');
      await c.query(`UPDATE audit_log SET after = '{"status":"retired","n":2}' WHERE id = $1`, [victim]);
      await c.query('ALTER TABLE audit_log ENABLE TRIGGER ALL');
    });
    const result = await verify();
    expect(result).toMatchObject({ ok: false, checked: victim - 1, firstBroken: { id: victim } });
    expect(result.firstBroken!.reason).toMatch(/content does not match/);
    await restore(victim, { status: 'active', n: 2 });
    expect((await verify()).ok).toBe(true);
  });

  it('detects a deleted entry: the next one no longer chains', async () => {
    const victim = (await h.t.database.pool.query(`SELECT id FROM audit_log WHERE target_id = 'd1'`)).rows[0].id as number;
    await superuser(async (c) => {
      await c.query(`SET session_replication_role = replica`);
      await c.query(`DELETE FROM audit_log WHERE id = $1`, [victim]);
    });
    expect(await verify()).toMatchObject({ ok: false, firstBroken: { id: victim + 1, reason: expect.stringMatching(/prev_hash/) } });
  });
});

describe('thamani audit verify', () => {
  const out: string[] = [];
  afterEach(() => vi.restoreAllMocks());
  async function run(): Promise<void> {
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    process.env.DATABASE_URL = h.t.url;
    process.env.LOG_LEVEL = 'silent';
    await buildCli().parseAsync(['node', 'thamani', 'audit', 'verify']);
  }

  it('exits non-zero and names the first broken entry when the chain is broken', async () => {
    // The previous test deleted an entry, so the chain is broken at the one after it.
    const err = await run().then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 2, message: expect.stringMatching(/BROKEN at entry \d+/) });
  });
});

async function restore(id: number, after: unknown): Promise<void> {
  await superuser(async (c) => {
    await c.query('ALTER TABLE audit_log DISABLE TRIGGER ALL');
    await c.query(`UPDATE audit_log SET after = $2 WHERE id = $1`, [id, JSON.stringify(after)]);
    await c.query('ALTER TABLE audit_log ENABLE TRIGGER ALL');
  });
}

describe('retention', () => {
  it('removes only entries older than 7 years and moves the chain anchor, so the rest still verifies', async () => {
    const old = new Date(Date.now() - 8 * 365.25 * 86_400_000);
    let prev: Buffer = GENESIS_HASH;
    for (let i = 0; i < 3; i++) {
      const fields = { at: new Date(old.getTime() + i * 1000), actorId: 'u0', actorRole: 'admin', ip: null, userAgent: null, requestId: null, action: 'site.create', targetType: 'site', targetId: `s${i}`, before: null, after: { i } };
      const hash = entryHash(fields, prev);
      await t.database.pool.query(
        `INSERT INTO audit_log (at, actor_id, actor_role, action, target_type, target_id, after, prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`,
        [fields.at, fields.actorId, fields.actorRole, fields.action, fields.targetType, fields.targetId, JSON.stringify(fields.after), prev, hash],
      );
      prev = hash;
    }
    await createAuditLog({ db: t.database.db }).record({ actorId: 'u0', actorRole: 'admin', action: 'site.update', targetType: 'site', targetId: 's0' });
    const removed = (await t.database.pool.query(`SELECT audit_log_apply_retention() AS n`)).rows[0].n;
    expect(removed).toBe(3);
    expect((await t.database.pool.query(`SELECT count(*)::int AS n FROM audit_log`)).rows[0].n).toBe(1);
    expect(await verifyAuditChain(t.database.db)).toMatchObject({ ok: true, checked: 1 });
  });
});
