import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliRunner } from '../test/cli-runner.ts';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';

let t: TestDatabase;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'thamani-cli-'));

beforeAll(async () => {
  t = await createTestDatabase();
});

const env = (): Record<string, string> => ({
  DATABASE_URL: t.url,
  THAMANI_DATA_DIR: dataDir,
  PKI_PASSPHRASE: 'cli test passphrase 123',
  LOG_LEVEL: 'error',
});

/** The real binary in its own process: exit status, stdout holding nothing but the output. */
function thamaniProcess(
  ...args: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/thamani.js', ...args], {
      env: { ...process.env, ...env() },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The same commands in-process, where the process is not the subject (test/cli-runner.ts). */
const thamani = cliRunner(env);

const json = async (...args: string[]): Promise<Record<string, unknown>> => {
  const r = await thamani(...args, '--json');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout.trim().split('\n')).toHaveLength(1); // exactly one JSON object
  return JSON.parse(r.stdout) as Record<string, unknown>;
};

describe('thamani CLI (technician sequence from the README)', () => {
  it('adds a site, a unit and a device by name, makes an enrolment token and lists certificates', async () => {
    expect(await json('site', 'add', 'Kisumu Girls', '--county', 'Kisumu')).toMatchObject({
      site: { name: 'Kisumu Girls' },
    });
    expect(
      await json('unit', 'add', 'Kisumu Girls', 'Digester 1', '--kind', 'biodigester'),
    ).toMatchObject({ unit: { kind: 'biodigester' } });
    expect(
      await json(
        'device',
        'add',
        '--unit',
        'Digester 1',
        '--site',
        'Kisumu Girls',
        '--id',
        'bd-cli-01',
      ),
    ).toMatchObject({ device: { id: 'bd-cli-01', status: 'pending' } });
    const token = await json('device', 'token', 'bd-cli-01');
    expect(token.token).toMatch(/^enr_[A-Za-z0-9_-]{43}$/);
    const human = await thamani('device', 'list');
    expect(human.stdout).toMatch(/bd-cli-01\s+biodigester\s+pending/);
    expect(await json('cert', 'list')).toEqual({ certificates: [] });
    const { rows } = await t.database.pool.query(
      `SELECT actor_id, action FROM audit_log WHERE action = 'enrolment_token.create'`,
    );
    expect(rows[0].actor_id).toMatch(/^cli:/);
  });

  // Through the process boundary: what a technician's shell sees. Starting the binary takes
  // seconds on a loaded machine, hence the generous time limit; the assertions are not timed.
  it('bin/thamani.js writes exactly one JSON object to stdout and exits 0', async () => {
    const r = await thamaniProcess('device', 'list', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(r.stdout)).toMatchObject({
      devices: [expect.objectContaining({ id: 'bd-cli-01' })],
    });
  }, 180_000);

  it('fails clearly, with a non-zero status, on bad input', async () => {
    const unknownUnit = await thamaniProcess('device', 'add', '--unit', 'No Such Unit');
    expect(unknownUnit.code).toBe(1);
    expect(unknownUnit.stderr).toMatch(/^thamani: Unit No Such Unit not found \(UNIT_NOT_FOUND\)/);
    const badKind = await thamaniProcess('unit', 'add', 'Kisumu Girls', 'X', '--kind', 'toaster');
    expect(badKind.code).not.toBe(0);
    expect(badKind.stderr).toMatch(/kind must be one of biodigester, collection_point/);
    const badId = await thamani('device', 'add', '--unit', 'Digester 1', '--id', 'Bad/Id');
    expect(badId.code).toBe(1);
    expect(badId.stderr).toMatch(/INVALID_DEVICE_ID/);
  }, 180_000);
});
