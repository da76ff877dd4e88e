/**
 * Per-device token bucket. A device may burst up to `burst` messages, then `ratePerSecond`
 * sustained. take() says how long the caller must wait for a token (0 = now); the broker delays
 * the PUBACK by that much instead of dropping an acknowledged-to-be reading, and refuses (closes)
 * only when the wait would exceed its bound.
 */
export interface TokenBucketOptions {
  ratePerSecond: number;
  burst: number;
  now?: () => number;
}

export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly now: () => number;

  constructor(private readonly opts: TokenBucketOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.tokens = opts.burst;
    this.last = this.now();
  }

  /** Reserves one token; returns the wait in ms before it is available (0 when immediate). */
  take(): number {
    const t = this.now();
    this.tokens = Math.min(
      this.opts.burst,
      this.tokens + ((t - this.last) / 1000) * this.opts.ratePerSecond,
    );
    this.last = t;
    this.tokens -= 1;
    if (this.tokens >= 0) return 0;
    return (-this.tokens / this.opts.ratePerSecond) * 1000;
  }

  /** True when the bucket has refilled to its burst: forgetting it loses nothing. */
  isFull(): boolean {
    return (
      this.tokens + ((this.now() - this.last) / 1000) * this.opts.ratePerSecond >= this.opts.burst
    );
  }

  /** Gives back a token reserved by take() whose message was refused. */
  refund(): void {
    this.tokens = Math.min(this.opts.burst, this.tokens + 1);
  }
}
