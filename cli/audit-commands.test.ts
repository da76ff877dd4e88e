import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { openAsLoginRole, urlForRole } from '../app/db-roles.ts';
import { createTestDatabase, testLogger, type TestDatabase } from '../test/db.ts';
import { withDatabase } from '../test/global-setup.ts';
import { forgeAppend, superuserTampering } from '../test/audit-tamper.ts';

let t: TestDatabase;
let apiRoleUrl: string;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'thamani-audit-cli-'));
const checkpoints = path.join(dataDir, 'audit-checkpoints');
const publicKey = path.join(dataDir, 'pki', 'audit-signing.pub');

beforeAll(async () => {
  t = await createTestDatabase();
  // The API's database role, as `thamani start` creates it: what the attacker of the issue held.
  const role = `thamani_api_t_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(18).toString('base64url');
  const api = await openAsLoginRole(
    { client: t.database.pool, url: t.url },
    { kind: 'api', loginRole: role, password, poolMax: 1, logger: testLogger },
  );
  await api.close();
  apiRoleUrl = urlForRole(t.url, role, password);
});

function run(
  bin: string,
  ...args: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: {
        ...process.env,
        DATABASE_URL: t.url,
        THAMANI_DATA_DIR: dataDir,
        PKI_PASSPHRASE: 'audit cli test passphrase',
        LOG_LEVEL: 'error',
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
const thamani = (...args: string[]) => run('bin/thamani.js', ...args);

async function attack(
  url: string,
  fn: (c: pg.Client) => Promise<unknown>,
  replica: boolean,
): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    if (replica) await c.query('SET session_replication_role = replica');
    await fn(c);
  } finally {
    await c.end();
  }
}

describe('thamani audit (operator and third-party verifier)', () => {
  it('signs what the CLI writes, checkpoints, exports, and verifies online and offline; then names each attack', async () => {
    for (const name of ['alice', 'bob'])
      expect((await thamani('user', 'add', name, '--role', 'technician')).code).toBe(0);
    expect((await thamani('user', 'disable', 'bob')).code).toBe(0);
    const cp = await thamani('audit', 'checkpoint');
    expect(cp).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(
        /audit checkpoint: 3 entries, head [0-9a-f]{64}, signed by key [0-9a-f]{16}/,
      ),
    });
    expect(readdirSync(checkpoints).filter((f) => f.endsWith('.json'))).toHaveLength(1);
    expect(await thamani('audit', 'verify')).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(
        /audit chain intact: 3 entries verified; head #3 .*1 checkpoints matched, latest covers 3 entries/,
      ),
    });

    const exported = path.join(dataDir, 'export.ndjson');
    expect((await thamani('audit', 'export', '--out', exported)).code).toBe(0);
    const offline = ['--export', exported, '--checkpoints', checkpoints, '--public-key', publicKey];
    expect(await thamani('audit', 'verify', ...offline)).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/intact: 3 entries verified/),
    });
    expect(await run('bin/thamani-audit-verify.js', ...offline)).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/intact: 3 entries verified/),
    });

    // (b) The API's own role appends a correctly hashed, back-dated entry under the admin's name.
    await attack(
      apiRoleUrl,
      (c) => forgeAppend(c, { actorId: 'admin', signature: 'none', realKeyId: '' }),
      false,
    );
    expect(await thamani('audit', 'verify')).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/BROKEN at position 4 .*not signed/),
    });

    // (a) The superuser deletes #2 with triggers off and renumbers and re-hashes what follows.
    await attack(
      withDatabase(inject('adminUrl'), t.name),
      (c) => superuserTampering.deleteAndRechain(c, 2),
      true,
    );
    expect(await thamani('audit', 'verify')).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/BROKEN at position 2 .*signature does not verify/),
    });
    const doctored = path.join(dataDir, 'doctored.ndjson');
    expect((await thamani('audit', 'export', '--out', doctored)).code).toBe(0);
    const r = await run(
      'bin/thamani-audit-verify.js',
      '--export',
      doctored,
      '--checkpoints',
      checkpoints,
      '--public-key',
      publicKey,
    );
    expect(r).toMatchObject({ code: 2, stdout: expect.stringMatching(/BROKEN at position 2/) });
    // The export taken before the attack still verifies: it is the evidence.
    expect((await run('bin/thamani-audit-verify.js', ...offline)).code).toBe(0);
  }, 600_000);

  it('refuses an offline verification without a public key, clearly', async () => {
    expect(
      await thamani('audit', 'verify', '--export', path.join(dataDir, 'export.ndjson')),
    ).toMatchObject({ code: 64, stderr: expect.stringMatching(/--export needs --public-key/) });
  }, 60_000);
});
