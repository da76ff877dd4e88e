import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliRunner } from '../test/cli-runner.ts';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';

let t: TestDatabase;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'thamani-fwcli-'));
const image = path.join(dataDir, 'fw-2.0.0.bin');

beforeAll(async () => {
  t = await createTestDatabase();
  writeFileSync(image, Buffer.from('THAMANI-FW 2.0.0 '.repeat(100)));
});

// In-process: these check the commands, not the process boundary (cli/cli.test.ts does that).
const thamani = cliRunner(() => ({
  DATABASE_URL: t.url,
  THAMANI_DATA_DIR: dataDir,
  PKI_PASSPHRASE: 'firmware cli passphrase',
  LOG_LEVEL: 'error',
}));

describe('thamani firmware', () => {
  it("uploads, refuses the uploader's own approval, plans a rollout for a unit by name once approved, and shows it", async () => {
    await thamani('site', 'add', 'Firmware School');
    await thamani('unit', 'add', 'Firmware School', 'Digester 1', '--kind', 'biodigester');
    await thamani('device', 'add', '--unit', 'Digester 1', '--id', 'bd-fwcli-1');
    await t.database.pool.query(
      `UPDATE devices SET status = 'active', firmware_version = '1.0.0' WHERE id = 'bd-fwcli-1'`,
    );

    const up = await thamani(
      'firmware',
      'upload',
      image,
      '--version',
      '2.0.0',
      '--kind',
      'biodigester',
      '--notes',
      'new pH calibration',
      '--json',
    );
    expect(up.stderr).toBe('');
    const made = JSON.parse(up.stdout) as {
      sha256: string;
      size: number;
      approvalRequired: boolean;
    };
    expect(made).toMatchObject({ size: 1700, approvalRequired: true });
    expect(
      await thamani(
        'firmware',
        'upload',
        path.join(dataDir, 'missing.bin'),
        '--version',
        '2.0.1',
        '--kind',
        'biodigester',
      ),
    ).toMatchObject({ code: 66 });
    expect(
      (await thamani('firmware', 'rollout', made.sha256, '--unit', 'Digester 1')).stderr,
    ).toMatch(/needs a second person/);
    expect((await thamani('firmware', 'approve', made.sha256)).stderr).toMatch(
      /other than its uploader/,
    );
    // A second person (here: straight in the database, as another technician's API call would).
    await t.database.pool.query(
      `UPDATE firmware_images SET approved_by = 'user:second-technician', approved_at = now() WHERE sha256 = $1`,
      [made.sha256],
    );
    expect((await thamani('firmware', 'list')).stdout).toMatch(
      /biodigester\s+2\.0\.0 .*approved by user:second-technician/,
    );
    expect(
      (await thamani('firmware', 'rollout', made.sha256, '--unit', 'Digester 1', '--percent', '10'))
        .stderr,
    ).toMatch(/choose one target/);
    const r = await thamani(
      'firmware',
      'rollout',
      made.sha256,
      '--unit',
      'Digester 1',
      '--site',
      'Firmware School',
      '--wave-size',
      '5',
      '--json',
    );
    expect(r.stderr).toBe('');
    const rollout = JSON.parse(r.stdout) as { id: string; devices: number; waves: number };
    expect(rollout).toMatchObject({ devices: 1, waves: 1 });
    expect((await thamani('firmware', 'status', rollout.id)).stdout).toMatch(
      /active, version 2\.0\.0\n\s+wave 1\s+bd-fwcli-1\s+pending/,
    );
    expect((await thamani('firmware', 'pause', rollout.id)).stdout).toBe(
      `rollout ${rollout.id} paused\n`,
    );
    const { rows } = await t.database.pool.query<{ action: string; actor_id: string }>(
      `SELECT action, actor_id FROM audit_log WHERE action LIKE 'firmware.%' ORDER BY id`,
    );
    expect(rows.map((x) => x.action)).toEqual([
      'firmware.upload',
      'firmware.rollout_create',
      'firmware.rollout_paused',
    ]);
    expect(rows.every((x) => x.actor_id.startsWith('cli:'))).toBe(true);
  });
});
