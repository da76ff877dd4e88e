import { TokenBucket } from './rate-limiter.ts';

/**
 * Per-device limits that outlive a connection. Keyed by the device id proved by the
 * certificate, not by the connection: a device that reconnects (clean or persistent session, a
 * takeover, a second socket) finds its bucket as it left it, so connect → burst → disconnect in
 * a loop gets no more than the rate. Also counts CONNECTs per device in a sliding window.
 *
 * The map is bounded: an entry whose bucket has refilled and whose CONNECT window is empty
 * carries no information and is dropped first; past the bound the least recently used entry
 * goes (only a fleet larger than the bound can see that).
 */
export interface DeviceLimitsOptions {
  ratePerSecond: number;
  burst: number;
  /**
   * A device over its rate for longer than this is flooding (its connection is closed). Counted
   * from the first publish that had to wait, to the moment the token of the current one comes
   * due: what a device has already queued counts, so a thousand publishes sent at once are a
   * flood at once, not after they have been paced through.
   */
  floodCloseMs: number;
  /** At most this many CONNECTs per device in any `connectWindowMs`. */
  connectsPerWindow: number;
  connectWindowMs: number;
  maxDevices: number;
  now?: () => number;
}

export interface PublishVerdict {
  /** How long this publish must wait for its token (0: now). */
  waitMs: number;
  /** How long the device is continuously over its rate, up to this publish's token (0: it is not). */
  overRateMs: number;
  /** overRateMs passed floodCloseMs: a sustained flood. */
  flood: boolean;
}

export type ConnectVerdict = { ok: true } | { ok: false; retryAfterMs: number };

interface DeviceEntry {
  bucket: TokenBucket;
  /** Since when every publish has had to wait (undefined: the device is within its rate). */
  overSince: number | undefined;
  /** Accepted CONNECTs in the window, oldest first. */
  connects: number[];
}

export class DeviceLimits {
  private readonly entries = new Map<string, DeviceEntry>();
  private readonly now: () => number;

  constructor(private readonly opts: DeviceLimitsOptions) {
    this.now = opts.now ?? (() => performance.now());
  }

  get size(): number {
    return this.entries.size;
  }

  take(deviceId: string): PublishVerdict {
    const e = this.entry(deviceId);
    const waitMs = e.bucket.take();
    const t = this.now();
    if (waitMs <= 0) {
      e.overSince = undefined;
      return { waitMs: 0, overRateMs: 0, flood: false };
    }
    e.overSince ??= t;
    const overRateMs = t - e.overSince + waitMs;
    return { waitMs, overRateMs, flood: overRateMs > this.opts.floodCloseMs };
  }

  /** Gives back the token of a publish that was refused after take(). */
  refund(deviceId: string): void {
    this.entries.get(deviceId)?.bucket.refund();
  }

  /** Counts a CONNECT; refuses it (without counting it) when the window is full. */
  admitConnect(deviceId: string): ConnectVerdict {
    const e = this.entry(deviceId, true);
    const t = this.now();
    const cutoff = t - this.opts.connectWindowMs;
    while (e.connects.length > 0 && e.connects[0]! <= cutoff) e.connects.shift();
    if (e.connects.length >= this.opts.connectsPerWindow)
      return { ok: false, retryAfterMs: Math.max(1, e.connects[0]! - cutoff) };
    e.connects.push(t);
    return { ok: true };
  }

  private entry(deviceId: string, touch = false): DeviceEntry {
    let e = this.entries.get(deviceId);
    if (e) {
      // Most recently connected last: eviction under pressure starts from the other end. (Not
      // on every publish: two map operations per message on the hot path buy nothing.)
      if (touch) {
        this.entries.delete(deviceId);
        this.entries.set(deviceId, e);
      }
      return e;
    }
    if (this.entries.size >= this.opts.maxDevices) this.evict();
    e = {
      bucket: new TokenBucket({
        ratePerSecond: this.opts.ratePerSecond,
        burst: this.opts.burst,
        now: this.now,
      }),
      overSince: undefined,
      connects: [],
    };
    this.entries.set(deviceId, e);
    return e;
  }

  private evict(): void {
    const cutoff = this.now() - this.opts.connectWindowMs;
    for (const [id, e] of this.entries) {
      if (
        e.bucket.isFull() &&
        (e.connects.length === 0 || e.connects[e.connects.length - 1]! <= cutoff)
      )
        this.entries.delete(id);
    }
    // A tenth at once, so that a fleet past the bound does not pay a full sweep per CONNECT.
    while (this.entries.size >= Math.max(1, Math.floor(this.opts.maxDevices * 0.9))) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }
}
