import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['./test/global-setup.ts'],
    // A statement sent on a connection still running another fails the test (pg 9 drops the queue).
    setupFiles: ['./test/pg-one-query-at-a-time.ts'],
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', 'data/**'],
    // Files run in parallel, each on its own database cloned from the migrated template.
    pool: 'forks',
    // Most files wait on PostgreSQL, sockets and child processes rather than compute, so more
    // files than cores run at once (vitest's default, cores - 1, ran them one by one on 2 cores).
    maxWorkers: Math.max(3, availableParallelism()),
    // Hang detectors, not budgets: CI machines are shared and slow, so a test waits for conditions
    // (expect.poll, below) and only a test that never finishes is cut off. Speed is measured by
    // `npm run bench`, never asserted here.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    expect: { poll: { timeout: 60_000, interval: 50 } },
  },
});
