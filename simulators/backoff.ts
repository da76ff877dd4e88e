/**
 * Reconnect delay: exponential with "full jitter" (AWS Architecture Blog, "Exponential Backoff
 * and Jitter"): a uniformly random delay up to min(cap, base · 2^attempt), so that a fleet cut off
 * together does not come back in lockstep and storm the broker.
 */
export interface BackoffOptions {
  baseMs?: number;
  capMs?: number;
}

/** What the simulator (and the storm bench's fleet) uses: the device contract's schedule. */
export const DEVICE_BACKOFF = { baseMs: 250, capMs: 15_000 } as const satisfies BackoffOptions;

export function backoffDelay(
  attempt: number,
  rand: () => number,
  opts: BackoffOptions = {},
): number {
  const base = opts.baseMs ?? 500;
  const cap = opts.capMs ?? 60_000;
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.floor(rand() * ceiling);
}
