import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDatabase, type Database } from '../db/client.ts';
import { migrationsFolder, runMigrations } from '../db/migrate.ts';
import * as schema from '../db/schema/index.ts';
import { withDatabase } from '../test/global-setup.ts';
import { createTestDatabase, testLogger, type TestDatabase } from '../test/db.ts';
import { testAuditPublicKeys, testAuditSigner } from '../test/audit-key.ts';
import { superuserTampering } from '../test/audit-tamper.ts';
import { entryHash, GENESIS_HASH } from './audit-fns.ts';
import { applyAuditRetention } from './audit-retention.ts';
import {
  createAuditCheckpointer,
  createAuditLog,
  readCheckpointFiles,
  verifyAuditChain,
} from './index.ts';

/** An entry as the code before signatures wrote it (no position, no key): the legacy format. */
async function insertLegacy(
  c: pg.ClientBase,
  n: number,
  opts: { at: (i: number) => Date; firstSeq?: number },
): Promise<void> {
  let prev: Buffer =
    (await c.query<{ hash: Buffer }>('SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1')).rows[0]
      ?.hash ?? GENESIS_HASH; // id order = chain order
  for (let i = 0; i < n; i++) {
    const f = {
      at: opts.at(i),
      actorId: 'u0',
      actorRole: 'admin',
      ip: null,
      userAgent: null,
      requestId: null,
      action: 'site.create',
      targetType: 'site',
      targetId: `s${i}`,
      before: null,
      after: { i },
    };
    const hash = entryHash(f, prev);
    const cols = `at, actor_id, actor_role, action, target_type, target_id, after, prev_hash, hash${opts.firstSeq ? ', seq' : ''}`;
    const params: unknown[] = [
      f.at,
      f.actorId,
      f.actorRole,
      f.action,
      f.targetType,
      f.targetId,
      JSON.stringify(f.after),
      prev,
      hash,
    ];
    if (opts.firstSeq) params.push(opts.firstSeq + i);
    await c.query(
      `INSERT INTO audit_log (${cols}) VALUES (${params.map((_, j) => `$${j + 1}`).join(',')})`,
      params,
    );
    prev = hash;
  }
}

describe('upgrading a deployment whose audit log predates the signing key', () => {
  let url: string;
  let name: string;
  let database: Database;
  let checkpointDir: string;

  beforeAll(async () => {
    // A database migrated only up to the last migration before signatures, as a deployment was.
    name = `thamani_t_${randomBytes(5).toString('hex')}`;
    const admin = new pg.Client({ connectionString: inject('adminUrl') });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    url = withDatabase(inject('adminUrl'), name);
    const old = await mkdtemp(path.join(os.tmpdir(), 'thamani-old-migrations-'));
    await cp(migrationsFolder, old, { recursive: true });
    const journalFile = path.join(old, 'meta', '_journal.json');
    const journal = JSON.parse(await readFile(journalFile, 'utf8')) as {
      entries: { tag: string }[];
    };
    const cut = journal.entries.findIndex((e) => e.tag === '0015_audit_signatures');
    expect(cut).toBeGreaterThan(0);
    await writeFile(
      journalFile,
      JSON.stringify({ ...journal, entries: journal.entries.slice(0, cut) }),
    );
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await migrate(drizzle(c), { migrationsFolder: old });
      await insertLegacy(c, 5, { at: () => new Date() });
    } finally {
      await c.end();
    }
    await runMigrations(url, testLogger);
    database = createDatabase({ url, poolMax: 3, logger: testLogger });
    checkpointDir = await mkdtemp(path.join(os.tmpdir(), 'thamani-legacy-cp-'));
  });
  afterAll(async () => {
    await database?.close();
    const c = new pg.Client({ connectionString: inject('adminUrl') });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await c.end();
  });
  const verify = async (db = database.db) =>
    verifyAuditChain(db, {
      publicKeys: testAuditPublicKeys,
      checkpoints: await readCheckpointFiles(checkpointDir),
    });

  it('the migration numbers the old entries 1..n in chain order; until something signed covers them, verify says so', async () => {
    const { rows } = await database.pool.query<{ seq: number; signature: Buffer | null }>(
      'SELECT seq, signature FROM audit_log ORDER BY id',
    );
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(rows.every((r) => r.signature === null)).toBe(true);
    expect(await verify()).toMatchObject({
      ok: false,
      legacy: 5,
      firstBroken: { seq: 1, reason: expect.stringMatching(/not yet covered/) },
    });
  });

  it('the first signed checkpoint anchors the legacy prefix; the first signed entry does too', async () => {
    await createAuditCheckpointer({
      db: database.db,
      signer: testAuditSigner,
      dir: checkpointDir,
    }).checkpoint();
    expect(await verify()).toMatchObject({
      ok: true,
      checked: 5,
      legacy: 5,
      checkpoints: { checked: 1 },
    });
    await createAuditLog({ db: database.db, signer: testAuditSigner }).record({
      actorId: 'u0',
      actorRole: 'admin',
      action: 'site.update',
      targetType: 'site',
      targetId: 's0',
    });
    expect(await verify()).toMatchObject({ ok: true, checked: 6, legacy: 5, head: { seq: 6 } });
  });

  it('a legacy entry changed afterwards is detected where the signed part covers it; an unsigned entry after signed ones is refused', async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query('BEGIN');
      await c.query('SET LOCAL session_replication_role = replica');
      await superuserTampering.editAndRechain(c, 2);
      const result = await verify(drizzle(c, { schema }));
      // Legacy entries carry no signature of their own: the break shows at the checkpoint (#5).
      expect(result).toMatchObject({
        ok: false,
        firstBroken: { seq: 5, reason: expect.stringMatching(/checkpoint/) },
      });
      await c.query('ROLLBACK');
      await c.query('BEGIN');
      await insertLegacy(c, 1, { at: () => new Date(), firstSeq: 7 });
      expect(await verify(drizzle(c, { schema }))).toMatchObject({
        ok: false,
        firstBroken: { seq: 7, reason: expect.stringMatching(/not signed/) },
      });
    } finally {
      await c.query('ROLLBACK').catch(() => undefined);
      await c.end();
    }
  });
});

describe('retention', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });

  it('removes only entries older than 7 years, attests it in a signed entry, and the rest still verifies', async () => {
    const old = Date.now() - 8 * 365.25 * 86_400_000;
    const c = new pg.Client({ connectionString: t.url });
    await c.connect();
    await insertLegacy(c, 3, { at: (i) => new Date(old + i * 1000), firstSeq: 1 }).finally(() =>
      c.end(),
    );
    const audit = createAuditLog({ db: t.database.db, signer: testAuditSigner });
    await audit.record({
      actorId: 'u0',
      actorRole: 'admin',
      action: 'site.update',
      targetType: 'site',
      targetId: 's0',
    });
    expect(await applyAuditRetention({ ownerDb: t.database.db, audit })).toBe(3);
    const { rows } = await t.database.pool.query(
      `SELECT seq, action, after FROM audit_log ORDER BY seq`,
    );
    expect(rows.map((r: { seq: number }) => r.seq)).toEqual([4, 5]);
    expect(rows[1]).toMatchObject({
      action: 'audit.retention',
      after: { removed: 3, throughSeq: 3 },
    });
    expect(
      await verifyAuditChain(t.database.db, { publicKeys: testAuditPublicKeys }),
    ).toMatchObject({ ok: true, checked: 2, head: { seq: 5 } });
    expect(await applyAuditRetention({ ownerDb: t.database.db, audit })).toBe(0);
  });

  it('deleting from the start without the retention job (no signed attestation) is detected at the first missing position', async () => {
    const c = new pg.Client({ connectionString: withDatabase(inject('adminUrl'), t.name) });
    await c.connect();
    try {
      await c.query('BEGIN');
      await c.query('SET LOCAL session_replication_role = replica');
      // A fake "retention": the attacker removes #4 and moves the anchor as the job would.
      await c.query(
        `UPDATE audit_anchor SET through_seq = 4, last_hash = (SELECT hash FROM audit_log WHERE seq = 4)`,
      );
      await c.query('DELETE FROM audit_log WHERE seq = 4');
      expect(
        await verifyAuditChain(drizzle(c, { schema }), { publicKeys: testAuditPublicKeys }),
      ).toMatchObject({
        ok: false,
        checked: 0,
        firstBroken: { seq: 4, reason: expect.stringMatching(/no signed retention entry/) },
      });
    } finally {
      await c.query('ROLLBACK').catch(() => undefined);
      await c.end();
    }
  });
});
