/**
 * A session's publishes that must wait for a rate-limit token, run in the order they arrived.
 *
 * One `setTimeout` per publish does not keep that order: the bucket computes a wait in real time
 * (performance.now()), but a timer is due at libuv's loop time, cached when the loop iteration
 * began. Under a stalled event loop (a storm of TLS handshakes in one poll phase), a publish
 * taken late in a long iteration gets a timer due *before* that of an earlier publish, and one
 * whose wait came out 0 runs at once, before the earlier ones still waiting. The handlers (ingest's
 * seq check among them) then see a device's publishes out of order. Here a publish with a wait,
 * or behind one, joins a queue; one timer serves its head.
 */
export class Pacer {
  private readonly queue: { at: number; run: () => void }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Runs `run` no sooner than `waitMs` from now, and after everything passed here before it. */
  after(waitMs: number, run: () => void): void {
    if (waitMs <= 0 && this.queue.length === 0) return run();
    this.queue.push({ at: this.now() + waitMs, run });
    this.timer ??= this.arm();
  }

  /** Publishes waiting their turn. */
  get waiting(): number {
    return this.queue.length;
  }

  private arm(): NodeJS.Timeout | undefined {
    const head = this.queue[0];
    if (!head) return undefined;
    return setTimeout(
      () => {
        this.timer = undefined;
        // A timer may fire up to a millisecond early (it counts whole ms): that is due.
        const now = this.now() + 1;
        while (this.queue.length > 0 && this.queue[0]!.at <= now) this.queue.shift()!.run();
        this.timer ??= this.arm();
      },
      Math.max(0, head.at - this.now()),
    );
  }
}
