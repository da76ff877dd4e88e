/**
 * `npm run bench`: every benchmark, one after the other, each in its own process (so one's
 * memory and JIT state never colour the other's numbers). BENCHMARKS.md records the results.
 *
 *   npm run bench                       ingest, then chart
 *   npm run bench -- ingest [options]   end-to-end acknowledged readings/s (bench/ingest-bench.ts)
 *   npm run bench -- chart [options]    dashboard chart latency at the API (bench/chart-bench.ts)
 */
import { spawnSync } from 'node:child_process';

const suites = { ingest: 'bench/ingest-bench.ts', chart: 'bench/chart-bench.ts' } as const;
const [first, ...rest] = process.argv.slice(2);
const chosen = first && first in suites ? [first as keyof typeof suites] : (Object.keys(suites) as (keyof typeof suites)[]);
const args = first && first in suites ? rest : process.argv.slice(2);
if (first && !(first in suites) && !first.startsWith('--')) {
  process.stderr.write(`unknown benchmark "${first}"; one of: ${Object.keys(suites).join(', ')}\n`);
  process.exit(64);
}
for (const name of chosen) {
  process.stdout.write(`\n== ${name} ==\n`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', suites[name], ...args], { stdio: 'inherit' });
  if (run.status !== 0) process.exit(run.status ?? 1);
}
