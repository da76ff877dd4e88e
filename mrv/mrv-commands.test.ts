import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../test/db.ts';
import { cliRunner } from '../test/cli-runner.ts';
import { seedDigesterMonth, type DigesterFixture } from '../test/mrv-fixture.ts';
import { seedFleet } from '../test/mrv-site-fixture.ts';

const root = path.resolve(import.meta.dirname, '..');
const t = await createTestDatabase();
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'thamani-mrv-cli-'));
const thamani = cliRunner(() => ({
  DATABASE_URL: t.url,
  THAMANI_DATA_DIR: dataDir,
  PKI_PASSPHRASE: 'mrv cli test passphrase',
  LOG_LEVEL: 'error',
}));
const file = (name: string) => path.join(dataDir, name);
let fx: DigesterFixture;

beforeAll(async () => {
  fx = await seedDigesterMonth(t.database.pool, { minutes: 3 * 1440 });
}, 300_000);

describe('thamani mrv', () => {
  it('issues, exports, proves and verifies a report; the offline verifier names what was changed', async () => {
    const key = await thamani('mrv', 'key');
    expect(key).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(
        /MRV report signing key [0-9a-f]{16} \(Ed25519\)\n-----BEGIN PUBLIC KEY-----/,
      ),
    });
    const pub = path.join(dataDir, 'pki', 'mrv-signing.pub');
    expect(key.stdout).toContain(readFileSync(pub, 'utf8'));

    expect(await thamani('mrv', 'issue', '--unit', 'nowhere', '--month', '2026-10')).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/Unit nowhere not found/),
    });
    expect(await thamani('mrv', 'issue', '--unit', fx.unitId, '--month', '2026-13')).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/not a month/),
    });
    expect(
      await thamani(
        'mrv',
        'issue',
        '--unit',
        fx.unitId,
        '--month',
        '2026-10',
        '--out',
        file('report.json'),
      ),
    ).toMatchObject({ code: 0 });
    expect(await thamani('mrv', 'verify', file('report.json'), '--public-key', pub)).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/signature: valid, key [0-9a-f]{16} \(trusted key\)/),
    });

    expect(
      await thamani('mrv', 'export', file('report.json'), '--out', file('readings.csv')),
    ).toMatchObject({ code: 0 });
    const v = await thamani(
      'mrv',
      'verify',
      file('report.json'),
      '--readings',
      file('readings.csv'),
      '--public-key',
      pub,
    );
    expect(v).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(
        new RegExp(`readings: ${fx.readings} readings reproduce the signed root`),
      ),
    });

    expect(
      await thamani(
        'mrv',
        'prove',
        file('report.json'),
        '--device',
        fx.deviceId,
        '--ts',
        '2026-10-02T08:15:00Z',
        '--out',
        file('proof.json'),
      ),
    ).toMatchObject({ code: 0 });
    expect(
      await thamani('mrv', 'verify', file('report.json'), '--proof', file('proof.json')),
    ).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/proof: leaf \d+ is included under the signed root/),
    });

    // The same checks by the stand-alone verifier, in a process without any database setting.
    const run = promisify(execFile);
    const bin = path.join(root, 'bin', 'thamani-mrv-verify.js');
    const env = { PATH: process.env.PATH ?? '', HOME: os.tmpdir() };
    const ok = await run(
      process.execPath,
      [
        bin,
        file('report.json'),
        '--public-key',
        pub,
        '--readings',
        file('readings.csv'),
        '--proof',
        file('proof.json'),
      ],
      { env, cwd: root },
    );
    expect(ok.stdout).toMatch(
      /signature: valid[\s\S]*readings: \d+ readings reproduce[\s\S]*proof: leaf/,
    );

    // One value changed in the export: exit 2, the chunk holding that line named.
    const lines = (await readFile(file('readings.csv'), 'utf8')).split('\n');
    const at = lines.findIndex((l) => l.includes(',2026-10-02T08:15:00.000000Z,'));
    lines[at] = lines[at]!.replace(
      /,(\d+)\.(\d)/,
      (_, a: string, b: string) => `,${a}.${(Number(b) + 1) % 10}`,
    );
    await writeFile(file('tampered.csv'), lines.join('\n'));
    const leaf = at - 1;
    const bad = await run(
      process.execPath,
      [bin, file('report.json'), '--readings', file('tampered.csv')],
      { env, cwd: root },
    ).then(
      () => undefined,
      (e: { code: number; stdout: string }) => e,
    );
    expect(bad?.code).toBe(2);
    const m = /first differing chunk \d+: leaves (\d+)–(\d+)/.exec(bad!.stdout);
    expect(m, bad?.stdout).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(leaf);
    expect(Number(m![2])).toBeGreaterThanOrEqual(leaf);

    // A report field changed: the signature fails, through the CLI as through the binary.
    const doc = JSON.parse(await readFile(file('report.json'), 'utf8')) as {
      report: { quantities: { biogasNm3: number } };
    };
    doc.report.quantities.biogasNm3 += 1;
    await writeFile(file('forged.json'), JSON.stringify(doc));
    expect(await thamani('mrv', 'verify', file('forged.json'), '--public-key', pub)).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/signature: INVALID/),
    });
    expect(await thamani('mrv', 'verify', file('readings.csv'))).toMatchObject({
      code: 65,
      stderr: expect.stringMatching(/not JSON/),
    });
  });

  it('issues a site report for a month; verify, export, prove (a reading of its second digester) and exact-leaf verify work on it', async () => {
    const fleet = await seedFleet(t.database.pool, [
      {
        silent: false,
        devices: 2,
        seed: 11,
        missing: 100,
        offline: { from: 0, length: 144 },
        quarantined: [],
        failedCalibration: null,
      },
      {
        silent: false,
        devices: 1,
        seed: 12,
        missing: 0,
        offline: { from: 0, length: 0 },
        quarantined: [5],
        failedCalibration: null,
      },
      {
        silent: true,
        devices: 1,
        seed: 13,
        missing: 0,
        offline: { from: 0, length: 0 },
        quarantined: [],
        failedCalibration: null,
      },
    ]);
    expect(
      await thamani(
        'mrv',
        'issue',
        '--unit',
        fx.unitId,
        '--site',
        fleet.siteName,
        '--month',
        '2026-10',
      ),
    ).toMatchObject({
      code: 64,
      stderr: expect.stringMatching(/give one of --unit, --site, --units or --all/),
    });
    const pub = path.join(dataDir, 'pki', 'mrv-signing.pub');
    expect(
      await thamani(
        'mrv',
        'issue',
        '--site',
        fleet.siteName,
        '--month',
        '2026-10',
        '--out',
        file('site.json'),
      ),
    ).toMatchObject({ code: 0 });
    expect(await thamani('mrv', 'verify', file('site.json'), '--public-key', pub)).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/signature: valid/),
    });
    expect(
      await thamani(
        'mrv',
        'export',
        file('site.json'),
        '--out',
        file('site.csv'),
        '--leaf-hashes',
        file('site.bin'),
      ),
    ).toMatchObject({ code: 0 });
    const lines = (await readFile(file('site.csv'), 'utf8')).trimEnd().split('\n');
    const doc = JSON.parse(await readFile(file('site.json'), 'utf8')) as {
      report: {
        readings: number;
        digesters: { unit: { id: string }; leaves: { first: number; count: number } }[];
      };
    };
    expect(lines.length - 1).toBe(doc.report.readings);
    expect(
      await thamani(
        'mrv',
        'verify',
        file('site.json'),
        '--public-key',
        pub,
        '--readings',
        file('site.csv'),
      ),
    ).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(
        new RegExp(`readings: ${doc.report.readings} readings reproduce the signed root`),
      ),
    });
    // A reading of the second digester in leaf order: its leaf lies after the first's.
    const second = doc.report.digesters[1]!;
    const target = lines[second.leaves.first + 2]!.split(',');
    expect(
      await thamani(
        'mrv',
        'prove',
        file('site.json'),
        '--device',
        target[0]!,
        '--ts',
        target[2]!,
        '--out',
        file('site-proof.json'),
      ),
    ).toMatchObject({ code: 0 });
    expect(
      await thamani(
        'mrv',
        'verify',
        file('site.json'),
        '--public-key',
        pub,
        '--proof',
        file('site-proof.json'),
      ),
    ).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(
        new RegExp(`proof: leaf ${second.leaves.first + 1} is included under the signed root`),
      ),
    });
    // One reading of the second digester changed: exit 2, that reading named.
    const changed = [...lines];
    const cells = changed[second.leaves.first + 2]!.split(',');
    cells[3] = String(BigInt(cells[3]!) + 1n);
    changed[second.leaves.first + 2] = cells.join(',');
    await writeFile(file('site-tampered.csv'), `${changed.join('\n')}\n`);
    const bad = await thamani(
      'mrv',
      'verify',
      file('site.json'),
      '--readings',
      file('site-tampered.csv'),
      '--leaf-hashes',
      file('site.bin'),
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(new RegExp(`leaf ${second.leaves.first + 1}\\b`));
    expect(await thamani('mrv', 'list')).toMatchObject({
      code: 0,
      stdout: expect.stringContaining(`site ${fleet.siteId}`),
    });
  });

  it('the offline verifier imports nothing but its own pure modules and node: built-ins', () => {
    const seen = new Set<string>();
    const external = new Set<string>();
    const visit = (f: string) => {
      if (seen.has(f)) return;
      seen.add(f);
      const src = readFileSync(f, 'utf8');
      for (const m of src.matchAll(
        /^(?:import|export)\s(?!type\b)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm,
      )) {
        const spec = m[1] ?? m[2]!;
        if (spec.startsWith('.')) visit(path.resolve(path.dirname(f), spec));
        else external.add(spec);
      }
    };
    visit(path.join(root, 'mrv', 'mrv-verify-offline.ts'));
    expect([...seen].map((f) => path.relative(root, f)).sort()).toEqual([
      'audit/audit-fns.ts',
      'audit/audit-signer.ts',
      'audit/signing-key-file.ts',
      'mrv/leaf-hashes-file.ts',
      'mrv/merkle-fns.ts',
      'mrv/mrv-encoding.ts',
      'mrv/mrv-report-fns.ts',
      'mrv/mrv-verify-offline.ts',
    ]);
    expect([...external].filter((s) => !s.startsWith('node:'))).toEqual([]);
  });
});
