import { defineConfig } from 'vitest/config';

/**
 * `npm run docs:screenshots`: captures the pictures in docs/img (test/screenshots.shots.ts) with
 * Debian's Chromium. Not part of `npm test`: it writes files into the repository.
 */
export default defineConfig({
  test: {
    globalSetup: ['./test/global-setup.ts'],
    include: ['test/*.shots.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    expect: { poll: { timeout: 60_000, interval: 50 } },
  },
});
