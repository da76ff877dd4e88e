import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliRunner } from '../test/cli-runner.ts';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';

let t: TestDatabase;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'thamani-cfgcli-'));

beforeAll(async () => {
  t = await createTestDatabase();
});

const thamani = cliRunner(() => ({
  DATABASE_URL: t.url,
  THAMANI_DATA_DIR: dataDir,
  PKI_PASSPHRASE: 'device config cli passphrase',
  LOG_LEVEL: 'error',
}));

describe('thamani device config / command', () => {
  it('sets overrides (added to, per metric), shows desired vs reported, refuses a bad value with the reason, and queues commands', async () => {
    await thamani('site', 'add', 'Config School');
    await thamani('unit', 'add', 'Config School', 'Digester 1', '--kind', 'biodigester');
    await thamani('device', 'add', '--unit', 'Digester 1', '--id', 'bd-cfgcli-1');

    const set1 = await thamani(
      'device',
      'config',
      'set',
      'bd-cfgcli-1',
      'reportingIntervalS=60',
      'calibration.ph.offset=0.1',
      'calibration.ph.gain=1',
      '--json',
    );
    expect(set1.stderr).toBe('');
    expect(JSON.parse(set1.stdout)).toMatchObject({
      config: { desiredVersion: 1, status: 'pending' },
    });
    await thamani(
      'device',
      'config',
      'set',
      'bd-cfgcli-1',
      'calibration.temperature_c.offset=-0.5',
      'calibration.temperature_c.gain=1',
      'timeSyncServer=time.example.org',
    );
    const got = JSON.parse(
      (await thamani('device', 'config', 'get', 'bd-cfgcli-1', '--json')).stdout,
    ) as {
      config: { desiredVersion: number; desired: Record<string, unknown> };
    };
    expect(got.config.desiredVersion).toBe(2);
    expect(got.config.desired).toMatchObject({
      reportingIntervalS: 60,
      timeSyncServer: 'time.example.org',
      calibration: { ph: { offset: 0.1, gain: 1 }, temperature_c: { offset: -0.5, gain: 1 } },
    });
    const text = await thamani('device', 'config', 'get', 'bd-cfgcli-1');
    expect(text.stdout).toContain('pending (desired v2, reported —)');

    const bad = await thamani('device', 'config', 'set', 'bd-cfgcli-1', 'reportingIntervalS=2');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('reportingIntervalS');

    const cmd = await thamani(
      'device',
      'command',
      'bd-cfgcli-1',
      'resend',
      '--since',
      '2026-11-30T08:00:00+03:00',
      '--json',
    );
    expect(cmd.stderr).toBe('');
    const made = JSON.parse(cmd.stdout) as {
      command: { id: string; params: unknown; status: string };
    };
    expect(made.command).toMatchObject({
      params: { since: '2026-11-30T05:00:00.000Z' },
      status: 'pending',
    });
    const res = JSON.parse(
      (await thamani('device', 'command-result', made.command.id, '--json')).stdout,
    ) as { command: { status: string } };
    expect(res.command.status).toBe('pending');
    const noSince = await thamani('device', 'command', 'bd-cfgcli-1', 'resend');
    expect(noSince.code).not.toBe(0);
    expect(noSince.stderr).toContain('since');
    const { rows } = await t.database.pool.query<{ action: string; actor_id: string }>(
      `SELECT action, actor_id FROM audit_log WHERE target_id = 'bd-cfgcli-1' AND action LIKE 'device.co%' ORDER BY id`,
    );
    expect(rows.map((r) => r.action)).toEqual([
      'device.config_desired',
      'device.config_overrides',
      'device.config_desired',
      'device.config_overrides',
      'device.command_created',
    ]);
    expect(rows.every((r) => r.actor_id.startsWith('cli:'))).toBe(true);
  }, 120_000);
});
