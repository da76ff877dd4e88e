import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../test/db.ts';
import { cliRunner } from '../test/cli-runner.ts';
import { seedDigesterMonth } from '../test/mrv-fixture.ts';
import { checkSignature, parseReportDocument } from './mrv-report-fns.ts';

const t = await createTestDatabase();
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'thamani-mrv-batch-cli-'));
const thamani = cliRunner(() => ({
  DATABASE_URL: t.url,
  THAMANI_DATA_DIR: dataDir,
  PKI_PASSPHRASE: 'mrv batch cli test passphrase',
  LOG_LEVEL: 'error',
  DB_POOL_MAX: '4',
}));
const units: string[] = [];

beforeAll(async () => {
  for (let i = 0; i < 3; i += 1)
    units.push((await seedDigesterMonth(t.database.pool, { minutes: 300 })).unitId);
}, 300_000);

describe('thamani mrv issue --all / --units', () => {
  it('issues every digester once, writes each report, and refuses what is already issued (exit 1)', async () => {
    const out = path.join(dataDir, 'reports');
    const first = await thamani('mrv', 'issue', '--month', '2026-10', '--units', units[0]!);
    expect(first).toMatchObject({ code: 0, stdout: expect.stringContaining(`issued ${units[0]}`) });
    const all = await thamani('mrv', 'issue', '--month', '2026-10', '--all', '--out-dir', out);
    expect(all.code, all.stderr).toBe(1);
    expect(all.stdout).toMatch(new RegExp(`refused ${units[0]}: .*already issued`));
    for (const u of units.slice(1)) expect(all.stdout).toContain(`issued ${u}`);
    expect(all.stderr).toContain('2 issued, 1 refused');
    const files = readdirSync(out);
    expect(files).toHaveLength(2);
    for (const f of files)
      expect(checkSignature(parseReportDocument(readFileSync(path.join(out, f), 'utf8'))).ok).toBe(
        true,
      );
  }, 300_000);

  it('refuses bad batch options with a clear message', async () => {
    for (const [args, msg] of [
      [['--all', '--units', units[0]!], /--all or --units, not both/],
      [['--all', '--concurrency', '4'], /--concurrency is a whole number from 1 to 3/],
      [['--all', '--concurrency', 'x'], /--concurrency is a whole number/],
      [['--units', ' , '], /--units names none/],
      [['--all', '--unit', units[0]!], /takes no --unit/],
      [[], /give one of --unit, --site, --units or --all/],
    ] as const) {
      const r = await thamani('mrv', 'issue', '--month', '2026-11', ...args);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(msg);
    }
  }, 300_000);
});
