import type { AuditLog } from '../audit/index.ts';
import { addressKey } from '../broker/index.ts';

/**
 * POST /enroll is public: the one-time token is the only credential. Tokens are 256 random bits,
 * so guessing is hopeless, but every attempt costs a CSR parse, an RSA signature check and a
 * database transaction, and a failure is worth recording. Per source address (IPv6: per /64):
 *
 * - at most `maxAttemptsPerAddress` attempts in any `windowMs`, good or bad;
 * - at most `maxFailuresPerAddress` failures in any `windowMs`, where attempts still in flight
 *   count as failures until they succeed (so a burst of parallel requests cannot all slip in
 *   before the first failure is counted).
 *
 * Kept in memory, like the login throttle: one gateway process serves the API.
 */
export interface EnrolmentLimits {
  maxAttemptsPerAddress: number;
  maxFailuresPerAddress: number;
  windowMs: number;
}

export const defaultEnrolmentLimits: EnrolmentLimits = {
  maxAttemptsPerAddress: 100,
  maxFailuresPerAddress: 10,
  windowMs: 10 * 60_000,
};

export type EnrolmentVerdict =
  | { allowed: true }
  | { allowed: false; retryAfterSeconds: number; reason: 'attempts' | 'failures' };

interface AddressState {
  attempts: number[];
  failures: number[];
  inFlight: number;
}

export class EnrolmentThrottle {
  private readonly byAddress = new Map<string, AddressState>();

  constructor(
    private readonly limits: EnrolmentLimits,
    private readonly now: () => number = Date.now,
    private readonly maxAddresses = 50_000,
  ) {}

  /** Admits one attempt (and counts it in flight) or says when to come back. */
  begin(ip: string): EnrolmentVerdict {
    const key = addressKey(ip);
    const s = this.state(key);
    const t = this.now();
    const cutoff = t - this.limits.windowMs;
    while (s.attempts.length > 0 && s.attempts[0]! <= cutoff) s.attempts.shift();
    while (s.failures.length > 0 && s.failures[0]! <= cutoff) s.failures.shift();
    const after = (oldest: number | undefined): number =>
      Math.max(1, Math.ceil(((oldest ?? t) + this.limits.windowMs - t) / 1000));
    if (s.attempts.length >= this.limits.maxAttemptsPerAddress)
      return {
        allowed: false,
        reason: 'attempts',
        retryAfterSeconds: after(s.attempts[s.attempts.length - this.limits.maxAttemptsPerAddress]),
      };
    if (s.failures.length + s.inFlight >= this.limits.maxFailuresPerAddress) {
      // Only requests in flight: they finish within seconds.
      const oldest =
        s.failures.length >= this.limits.maxFailuresPerAddress
          ? s.failures[s.failures.length - this.limits.maxFailuresPerAddress]
          : undefined;
      return {
        allowed: false,
        reason: 'failures',
        retryAfterSeconds: oldest === undefined ? 1 : after(oldest),
      };
    }
    s.attempts.push(t);
    s.inFlight++;
    return { allowed: true };
  }

  /** The attempt admitted by begin() finished. */
  end(ip: string, ok: boolean): void {
    const key = addressKey(ip);
    const s = this.byAddress.get(key);
    if (!s) return;
    s.inFlight = Math.max(0, s.inFlight - 1);
    if (!ok) s.failures.push(this.now());
  }

  get size(): number {
    return this.byAddress.size;
  }

  private state(key: string): AddressState {
    let s = this.byAddress.get(key);
    if (s) return s;
    if (this.byAddress.size >= this.maxAddresses) this.forgetIdle();
    s = { attempts: [], failures: [], inFlight: 0 };
    this.byAddress.set(key, s);
    return s;
  }

  private forgetIdle(): void {
    const cutoff = this.now() - this.limits.windowMs;
    for (const [key, s] of this.byAddress) {
      if (
        s.inFlight === 0 &&
        (s.attempts.at(-1) ?? 0) <= cutoff &&
        (s.failures.at(-1) ?? 0) <= cutoff
      )
        this.byAddress.delete(key);
    }
    // Still full: the oldest go (an attacker with that many addresses is not slowed by this anyway).
    for (const key of this.byAddress.keys()) {
      if (this.byAddress.size < this.maxAddresses) break;
      this.byAddress.delete(key);
    }
  }
}

/**
 * Failed and throttled enrolments in the audit log, aggregated so that a flood of them cannot
 * become a flood of writes: per (action, source address) the first event of a window is written
 * at once; the rest are counted, and one summary entry (count, codes, a few request ids) is
 * written when the window closes. Past `maxKeys` addresses in a window, events are folded into
 * one entry for all addresses. So at most 2 × (maxKeys + 1) entries per window, whatever comes.
 */
export interface EnrolmentEvent {
  action: 'security.enrolment_failed' | 'security.enrolment_throttled';
  ip: string;
  code: string;
  requestId: string;
}

interface Bucket {
  first: EnrolmentEvent;
  count: number;
  codes: Record<string, number>;
  requestIds: string[];
}

export function createEnrolmentAudit(deps: {
  audit: Pick<AuditLog, 'record'>;
  windowMs?: number;
  maxKeys?: number;
  onError?: (err: unknown) => void;
}) {
  const windowMs = deps.windowMs ?? 60_000;
  const maxKeys = deps.maxKeys ?? 1000;
  let buckets = new Map<string, Bucket>();
  const pending = new Set<Promise<unknown>>();
  const counters = { events: 0, written: 0 };

  const write = (e: EnrolmentEvent, after: Record<string, unknown>): void => {
    counters.written++;
    const p = deps.audit
      .record({
        actorId: 'enrolment',
        actorRole: 'device',
        ip: e.ip === '*' ? null : e.ip,
        requestId: e.requestId,
        action: e.action,
        targetType: 'enrolment',
        targetId: null,
        after,
      })
      .catch((err: unknown) => deps.onError?.(err))
      .finally(() => pending.delete(p));
    pending.add(p);
  };

  const flush = (): void => {
    const closing = buckets;
    buckets = new Map();
    for (const [key, b] of closing) {
      if (b.count <= 1) continue; // the first was written when it happened
      write(
        { ...b.first, ip: key.endsWith('|*') ? '*' : b.first.ip },
        {
          aggregated: true,
          count: b.count,
          codes: b.codes,
          requestIds: b.requestIds,
          windowSeconds: windowMs / 1000,
        },
      );
    }
  };
  const timer = setInterval(flush, windowMs);
  timer.unref();

  return {
    counters,
    record(e: EnrolmentEvent): void {
      counters.events++;
      let key = `${e.action}|${addressKey(e.ip)}`;
      if (!buckets.has(key) && buckets.size >= maxKeys) key = `${e.action}|*`;
      const b = buckets.get(key);
      if (b) {
        b.count++;
        b.codes[e.code] = (b.codes[e.code] ?? 0) + 1;
        if (b.requestIds.length < 5) b.requestIds.push(e.requestId);
        return;
      }
      buckets.set(key, { first: e, count: 1, codes: { [e.code]: 1 }, requestIds: [e.requestId] });
      write(key.endsWith('|*') ? { ...e, ip: '*' } : e, { code: e.code, count: 1 });
    },
    /** Writes the summaries now (the window ends early) and waits for every write. */
    async flush(): Promise<void> {
      flush();
      await Promise.all([...pending]);
    },
    async close(): Promise<void> {
      clearInterval(timer);
      flush();
      await Promise.all([...pending]);
    },
  };
}

export type EnrolmentAudit = ReturnType<typeof createEnrolmentAudit>;
