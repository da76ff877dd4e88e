/**
 * Waiting in tests: for a condition, never for a wall-clock budget sized for an idle machine.
 * CI machines are shared and slow; a test waits as long as it must (up to a deadline far beyond
 * any plausible delay, so a real hang still fails), and how fast things happen is measured by
 * `npm run bench`, not asserted here. For an assertion, `expect.poll` does the same (its
 * default timeout is set in vitest.config.ts); this is for a value a test goes on with.
 */

/** How long a test waits for something that will happen, before calling it a hang. */
export const PATIENCE_MS = 60_000;

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` until `done(value)` holds, then returns that value; throws after `timeoutMs`
 * with `what` and the last value seen.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | Promise<T>,
  done: (value: T) => boolean = Boolean,
  timeoutMs = PATIENCE_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let interval = 10; ; interval = Math.min(interval * 2, 250)) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(value)})`,
      );
    await pause(interval);
  }
}
