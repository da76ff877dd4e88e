/**
 * Login throttling, per account and per client IP, with a sliding window of failures. Kept in
 * memory: one gateway process serves the API (docs/security-model.md); a restart forgets the
 * counters, which costs an attacker a restart they cannot trigger.
 */
export interface ThrottleOptions {
  now: () => number;
  windowMs: number;
  maxFailuresPerAccount: number;
  maxFailuresPerIp: number;
  /** Bound on tracked keys, so a flood of distinct usernames cannot exhaust memory. */
  maxKeys?: number;
}

export type ThrottleVerdict = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export function createLoginThrottle(opts: ThrottleOptions) {
  const failures = new Map<string, number[]>();
  const maxKeys = opts.maxKeys ?? 50_000;

  function recent(key: string): number[] {
    const cutoff = opts.now() - opts.windowMs;
    const list = (failures.get(key) ?? []).filter((t) => t > cutoff);
    if (list.length === 0) failures.delete(key);
    else failures.set(key, list);
    return list;
  }

  function verdictFor(key: string, max: number): ThrottleVerdict {
    const list = recent(key);
    if (list.length < max) return { allowed: true };
    const oldest = list[list.length - max]!;
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((oldest + opts.windowMs - opts.now()) / 1000)) };
  }

  function push(key: string): void {
    if (!failures.has(key) && failures.size >= maxKeys) {
      const first = failures.keys().next();
      if (!first.done) failures.delete(first.value);
    }
    failures.set(key, [...recent(key), opts.now()]);
  }

  return {
    check(account: string, ip: string): ThrottleVerdict {
      const byIp = verdictFor(`ip:${ip}`, opts.maxFailuresPerIp);
      if (!byIp.allowed) return byIp;
      return verdictFor(`account:${account.toLowerCase()}`, opts.maxFailuresPerAccount);
    },
    fail(account: string, ip: string): void {
      push(`ip:${ip}`);
      push(`account:${account.toLowerCase()}`);
    },
    succeed(account: string): void {
      failures.delete(`account:${account.toLowerCase()}`);
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
