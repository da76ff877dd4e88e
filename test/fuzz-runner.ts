import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

/**
 * `npm run fuzz -- --runs N [--seed S]`: the totality properties (issue 16) with more inputs
 * than `npm test` affords: N payloads against a live gateway over mTLS (test/device-fuzz.test.ts;
 * configuration acknowledgements, command results and subscriptions: device-fuzz-topics.test.ts),
 * 25×N through the parsers alone (ingest/payload-fns.totality.test.ts), and N/5 generated
 * delivery orders through the batch writer (ingest/sequencing.test.ts). Without --seed a
 * random one, printed, so that a failure can be run again.
 */
const { values } = parseArgs({
  options: { runs: { type: 'string', default: '1000' }, seed: { type: 'string' } },
});
const runs = Number.parseInt(values.runs, 10);
const seed =
  values.seed !== undefined
    ? Number.parseInt(values.seed, 10)
    : Math.floor(Math.random() * 2 ** 31);
if (!Number.isSafeInteger(runs) || runs < 1 || !Number.isSafeInteger(seed)) {
  console.error('usage: npm run fuzz -- --runs N [--seed S]');
  process.exit(2);
}
console.info(`fuzzing with ${runs} runs, seed ${seed}`);
const result = spawnSync(
  'npx',
  [
    'vitest',
    'run',
    'test/device-fuzz.test.ts',
    'test/device-fuzz-topics.test.ts',
    'ingest/payload-fns.totality.test.ts',
    'ingest/sequencing.test.ts',
  ],
  {
    stdio: 'inherit',
    env: { ...process.env, FUZZ_RUNS: String(runs), FUZZ_SEED: String(seed) },
  },
);
process.exit(result.status ?? 1);
