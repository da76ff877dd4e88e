/**
 * `npm run bench`: every benchmark, one after the other, each in its own process (so one's
 * memory and JIT state never colour the other's numbers). BENCHMARKS.md records the results.
 *
 *   npm run bench                       ingest, chart, audit, cli
 *   npm run bench -- ingest [options]   end-to-end acknowledged readings/s (bench/ingest-bench.ts)
 *   npm run bench -- chart [options]    dashboard chart latency at the API (bench/chart-bench.ts)
 *   npm run bench -- audit [options]    audit appends/s with signing, sign/verify cost (bench/audit-bench.ts)
 *   npm run bench -- cli [options]      `thamani` start-up per command, checkouts side by side (bench/cli-bench.ts)
 *   npm run bench -- mrv [options]      MRV report issue time, peak memory, archive size (bench/mrv-bench.ts)
 *   npm run bench -- enrol [options]    enrolment and gateway handshakes/s, P-256 against RSA keys (bench/enrol-bench.ts)
 *   npm run bench -- storm [options]    a reconnect storm after a gateway restart (bench/storm-bench.ts; not run by default)
 *   npm run bench -- cluster [options]  one node in memory, one on Redis, two behind HAProxy (bench/cluster-bench.ts; not run by default)
 *
 * The suites run as JavaScript compiled by tsc (tsconfig.bench.json), the form production runs
 * (`npm run build`, Dockerfile), not through tsx: tsx's transform wraps every function it
 * creates in a naming helper, which costs a few per cent on the hot path that production never
 * pays.
 */
import { spawnSync } from 'node:child_process';
import { cpSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const suites = {
  ingest: 'bench/ingest-bench.ts',
  chart: 'bench/chart-bench.ts',
  audit: 'bench/audit-bench.ts',
  cli: 'bench/cli-bench.ts',
  mrv: 'bench/mrv-bench.ts',
  enrol: 'bench/enrol-bench.ts',
  storm: 'bench/storm-bench.ts',
  cluster: 'bench/cluster-bench.ts',
} as const;
/** Run by `npm run bench` with no suite named; storm (minutes, thousands of sockets) and cluster (redis-server, haproxy) only when asked. */
const byDefault: (keyof typeof suites)[] = ['ingest', 'chart', 'audit', 'cli', 'mrv', 'enrol'];
const [first, ...rest] = process.argv.slice(2);
const chosen = first && first in suites ? [first as keyof typeof suites] : byDefault;
const args = first && first in suites ? rest : process.argv.slice(2);
if (first && !(first in suites) && !first.startsWith('--')) {
  process.stderr.write(`unknown benchmark "${first}"; one of: ${Object.keys(suites).join(', ')}\n`);
  process.exit(64);
}
/** Kept in step with package.json's "start" script and the Dockerfile's ENTRYPOINT. */
const productionNodeFlags = ['--max-semi-space-size=64'];
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'node_modules', '.cache', 'thamani-bench');
const build = spawnSync(
  process.execPath,
  [
    path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
    '-p',
    path.join(root, 'tsconfig.bench.json'),
  ],
  { stdio: 'inherit' },
);
if (build.status !== 0) process.exit(build.status ?? 1);
cpSync(path.join(root, 'db', 'migrations'), path.join(out, 'db', 'migrations'), {
  recursive: true,
});
for (const name of chosen) {
  process.stdout.write(`\n== ${name} ==\n`);
  // The V8 flags production runs with (package.json "start", Dockerfile): see docs/operations.md.
  const run = spawnSync(
    process.execPath,
    [...productionNodeFlags, path.join(out, suites[name].replace(/\.ts$/, '.js')), ...args],
    { stdio: 'inherit' },
  );
  if (run.status !== 0) process.exit(run.status ?? 1);
}
