/**
 * CLI start-up: how long a technician waits for `thamani` to answer, per command, for this
 * checkout and optionally for others side by side (runs alternate, so machine drift hits all).
 *
 *   npm run bench -- cli [--runs 15] [--root /path/to/other/checkout ...] [--database thamani_cli_bench]
 *
 * Each checkout gets its own database (migrated by its own first command); `device list` and
 * `site add` are the database commands, `--help` and a mistyped command the ones that need none.
 * The first call of each checkout is left out (it compiles or migrates); the medians follow.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { numberArg, stringArg } from './args.ts';
import { openBenchDatabase } from './bench-db.ts';

const runs = numberArg('runs', 15);
const roots = [
  process.cwd(),
  ...process.argv.flatMap((a, i) =>
    a === '--root' && process.argv[i + 1] ? [path.resolve(process.argv[i + 1]!)] : [],
  ),
];
const logger = pino({ level: 'error' });
const commands: Record<string, string[]> = {
  '--help': ['--help'],
  'device --help': ['device', '--help'],
  'mistyped command': ['device', 'lst'],
  'device list': ['device', 'list'],
  'site add': ['site', 'add', '__SITE__'],
};

const database = await openBenchDatabase({
  name: stringArg('database', 'thamani_cli_bench'),
  fresh: true,
  logger,
});
try {
  const envs = new Map<string, NodeJS.ProcessEnv>();
  for (const [i, root] of roots.entries()) {
    const name = `cli_bench_${i}`;
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const u = new URL(database.url);
    u.pathname = `/${name}`;
    envs.set(root, {
      ...process.env,
      DATABASE_URL: u.toString(),
      THAMANI_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'thamani-cli-bench-')),
      PKI_PASSPHRASE: 'cli bench passphrase',
      LOG_LEVEL: 'error',
    });
  }
  const times = new Map<string, number[]>();
  const call = (root: string, label: string, n: number): number => {
    const args = commands[label]!.map((a) =>
      a === '__SITE__' ? `Bench site ${n} ${Math.random()}` : a,
    );
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [path.join(root, 'bin', 'thamani.js'), ...args], {
      cwd: root,
      env: envs.get(root),
      encoding: 'utf8',
    });
    const ms = performance.now() - t0;
    if (r.status !== 0 && label !== 'mistyped command')
      throw new Error(`${root}: thamani ${args.join(' ')} failed: ${r.stderr}`);
    return ms;
  };
  for (const root of roots) for (const label of Object.keys(commands)) call(root, label, -1); // compile, migrate, CA
  for (let n = 0; n < runs; n++) {
    for (const label of Object.keys(commands)) {
      for (const root of roots) {
        const key = `${root}\t${label}`;
        times.set(key, [...(times.get(key) ?? []), call(root, label, n)]);
      }
    }
  }
  const median = (xs: number[]): number =>
    [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  process.stdout.write(
    `database: ${database.source}; ${runs} runs per command and checkout; load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}\n`,
  );
  process.stdout.write(
    `${'command'.padEnd(18)}${roots.map((r) => path.basename(r).padStart(22)).join('')}\n`,
  );
  for (const label of Object.keys(commands)) {
    process.stdout.write(
      `${label.padEnd(18)}${roots.map((r) => `${median(times.get(`${r}\t${label}`)!).toFixed(0)} ms`.padStart(22)).join('')}\n`,
    );
  }
} finally {
  await database.stop();
}
