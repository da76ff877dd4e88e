import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migrationsFolder, runMigrations } from '../db/migrate.ts';
import { withDatabase } from '../test/global-setup.ts';
import { testLogger } from '../test/db.ts';

/**
 * Upgrading a deployment whose alerts name their acknowledger (alerts.acknowledged_by, a display
 * name): migrations 0017/0018 turn it into an id, from the signed acknowledgement entry if there
 * is one, else from a unique display-name match, else 'unknown'; the name column goes. Users
 * erased before get their "erased user #N".
 */
let url: string;
let name: string;
let client: pg.Client;

beforeAll(async () => {
  name = `thamani_t_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  url = withDatabase(inject('adminUrl'), name);
  const old = await mkdtemp(path.join(os.tmpdir(), 'thamani-old-migrations-'));
  await cp(migrationsFolder, old, { recursive: true });
  const journalFile = path.join(old, 'meta', '_journal.json');
  const journal = JSON.parse(await readFile(journalFile, 'utf8')) as { entries: { tag: string }[] };
  const cut = journal.entries.findIndex((e) => e.tag === '0017_erasure_pseudonyms');
  expect(cut).toBeGreaterThan(0);
  await writeFile(
    journalFile,
    JSON.stringify({ ...journal, entries: journal.entries.slice(0, cut) }),
  );
  client = new pg.Client({ connectionString: url });
  await client.connect();
  await migrate(drizzle(client), { migrationsFolder: old });
}, 120_000);

afterAll(async () => {
  await client?.end();
  const c = new pg.Client({ connectionString: inject('adminUrl') });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
  await c.end();
});

describe('migrating alerts.acknowledged_by to an id', () => {
  it('takes the id from the signed acknowledgement, else a unique name, else says unknown; erased users become "erased user #N"', async () => {
    const q = (text: string, params: unknown[] = []) => client.query(text, params);
    const user = async (username: string, displayName: string, erased = false) =>
      (
        await q(
          `INSERT INTO users (username, display_name, role, erased_at) VALUES ($1, $2, 'technician', $3) RETURNING id`,
          [username, displayName, erased ? new Date() : null],
        )
      ).rows[0].id as string;
    const alice = await user('alice', 'Alice Achieng');
    const bob = await user('bob', 'Bob Barasa');
    await user('sam1', 'Sam');
    await user('sam2', 'Sam');
    const gone = await user('erased-x', 'erased user', true);
    const {
      rows: [site],
    } = await q(`INSERT INTO sites (name) VALUES ('Old Site') RETURNING id`);
    const {
      rows: [unit],
    } = await q(
      `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', 'D1') RETURNING id`,
      [site.id],
    );
    await q(`INSERT INTO devices (id, unit_id, kind) VALUES ('bd-old', $1, 'biodigester')`, [
      unit.id,
    ]);
    await q(
      `INSERT INTO alert_rules (id, unit_kind, metric, condition, warn, clear, title) VALUES ('r', 'biodigester', 'x', 'above', 1, 0, 'R') ON CONFLICT DO NOTHING`,
    );
    const alert = async (by: string | null) =>
      (
        await q(
          `INSERT INTO alerts (rule_id, device_id, unit_id, severity, status, opened_at, closed_at, acknowledged_at, acknowledged_by) VALUES ('r', 'bd-old', $1, 'warning', 'closed', now(), now(), $2, $3) RETURNING id::int AS id`,
          [unit.id, by ? new Date() : null, by],
        )
      ).rows[0].id as number;
    // Acknowledged by Alice; the entry is authoritative even though the stored name is stale.
    const a1 = await alert('Alice (old name)');
    await q(
      `INSERT INTO audit_log (at, actor_id, actor_role, action, target_type, target_id, prev_hash, hash, seq) VALUES (now(), $1, 'technician', 'alert.acknowledge', 'alert', $2, '\\x00', '\\x01', 1)`,
      [alice, String(a1)],
    );
    const a2 = await alert('Bob Barasa');
    const a3 = await alert('Sam');
    const a4 = await alert(null);

    await runMigrations(url, testLogger);

    const { rows } = await q(
      `SELECT id::int AS id, acknowledged_by_id AS by, actor_display_name(acknowledged_by_id) AS name FROM alerts ORDER BY id`,
    );
    expect(rows).toEqual([
      { id: a1, by: alice, name: 'Alice Achieng' },
      { id: a2, by: bob, name: 'Bob Barasa' },
      { id: a3, by: 'unknown', name: 'unknown' },
      { id: a4, by: null, name: null },
    ]);
    const { rows: cols } = await q(
      `SELECT column_name FROM information_schema.columns WHERE table_name = 'alerts' AND column_name LIKE 'acknowledged%' ORDER BY 1`,
    );
    expect(cols.map((c) => String(c.column_name))).toEqual([
      'acknowledged_at',
      'acknowledged_by_id',
    ]);
    const {
      rows: [erased],
    } = await q(
      `SELECT number, display_name, actor_display_name(id::text) AS shown FROM users WHERE id = $1`,
      [gone],
    );
    expect(erased.display_name).toBe(`erased user #${erased.number}`);
    expect(erased.shown).toBe(`erased user #${erased.number}`);
  });
});
