import type { Db } from '../db/client.ts';
import { authRepo } from './auth-repo.ts';
import { sha256 } from './password-fns.ts';

/**
 * Login throttling per account and per client IP, counted in the database (table
 * login_throttle). Every attempt first *reserves* its place with one atomic statement
 * (INSERT … ON CONFLICT DO UPDATE … RETURNING) and is refused when the count is over the limit,
 * before any user lookup or password hashing. Check-then-act in two steps let 12 parallel
 * guesses all pass the check while the first ones were still hashing (issue 17 §2); a
 * reservation cannot be overtaken. A failed attempt keeps its reservation; a successful one
 * clears the account's count and gives its IP slot back.
 *
 * Fixed window per key: the first attempt opens it, it closes `windowMs` later.
 */
export interface ThrottleOptions {
  db: Db;
  now: () => Date;
  windowMs: number;
  maxFailuresPerAccount: number;
  maxFailuresPerIp: number;
}

export type ThrottleVerdict = { allowed: true } | { allowed: false; retryAfterSeconds: number };

const keyOf = (kind: 'account' | 'ip', value: string): Buffer =>
  sha256(`${kind}:${kind === 'account' ? value.toLowerCase() : value}`);

export function createLoginThrottle(opts: ThrottleOptions) {
  let lastSweep = 0;

  /** Drops keys whose window has passed; at most once a window, never awaited by a sign-in. */
  function sweep(now: Date): void {
    if (now.getTime() - lastSweep < opts.windowMs) return;
    lastSweep = now.getTime();
    void authRepo
      .sweepThrottle(opts.db, new Date(now.getTime() - opts.windowMs))
      .catch(() => undefined);
  }

  return {
    /** Reserves one attempt for this account and IP; refused when either is over its limit. */
    async reserve(account: string, ip: string): Promise<ThrottleVerdict> {
      const now = opts.now();
      const cutoff = new Date(now.getTime() - opts.windowMs);
      const acc = keyOf('account', account);
      const byIp = keyOf('ip', ip);
      // Rows are always locked account first, then IP: two attempts can never wait on each other in a cycle.
      const rows = await authRepo.reserveAttempts(opts.db, acc, byIp, now, cutoff);
      sweep(now);
      let retryAfterMs = 0;
      for (const r of rows) {
        const max = Buffer.from(r.key_hash).equals(acc)
          ? opts.maxFailuresPerAccount
          : opts.maxFailuresPerIp;
        if (r.attempts > max)
          retryAfterMs = Math.max(
            retryAfterMs,
            new Date(r.window_start).getTime() + opts.windowMs - now.getTime(),
          );
      }
      return retryAfterMs > 0
        ? { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) }
        : { allowed: true };
    },
    /** An attempt that was never evaluated (the server was busy): both slots are given back. */
    async release(account: string, ip: string): Promise<void> {
      await authRepo.releaseAttempts(opts.db, keyOf('account', account), keyOf('ip', ip));
    },
    /** A successful sign-in: the account starts afresh, the IP gets its reserved slot back. */
    async succeed(account: string, ip: string): Promise<void> {
      await authRepo.clearAccount(opts.db, keyOf('account', account), keyOf('ip', ip));
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;

/**
 * Bounds how many password hashes (scrypt, 128 MiB and ~0.1–0.5 s each) run at once, below the
 * libuv thread pool size, so hashing never takes every pool thread: DNS lookups and file I/O of
 * the rest of the process (new database connections among them) keep running. 30 parallel
 * sign-ins once starved the database pool into 500s. Waiters queue up to `maxQueue`; beyond
 * that the attempt is refused at once with LOGIN_BUSY (429 + Retry-After), never a 500.
 */
export function createHashGate(opts: { maxConcurrent: number; maxQueue: number }) {
  let running = 0;
  const waiting: (() => void)[] = [];
  let peak = 0;
  return {
    /** Runs fn when a slot is free; undefined when the queue is full (the caller answers "busy"). */
    async run<T>(fn: () => Promise<T>): Promise<{ value: T } | undefined> {
      if (running >= opts.maxConcurrent) {
        if (waiting.length >= opts.maxQueue) return undefined;
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else running += 1;
      peak = Math.max(peak, running);
      try {
        return { value: await fn() };
      } finally {
        const next = waiting.shift();
        if (next)
          next(); // the slot passes straight to the next waiter
        else running -= 1;
      }
    },
    /** Most hashes seen running at once (tests). */
    peak: () => peak,
  };
}

export type HashGate = ReturnType<typeof createHashGate>;
