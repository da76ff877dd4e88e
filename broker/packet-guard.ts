import { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';

/**
 * Aedes 1.x has no maximum packet size: its parser buffers a whole PUBLISH before anyone can look
 * at it. This duplex sits between the TLS socket and `broker.handle()` and reads only MQTT fixed
 * headers ([MQTT-2.2]: one type byte, then a Remaining Length of 1-4 bytes, 7 bits each,
 * [MQTT-2.2.3]) as bytes stream past. A packet whose declared size exceeds the limit closes the
 * connection before its body arrives, so a 20 MB publish costs us one TLS record, not 20 MB.
 *
 * It is also where the broker applies global backpressure: pause() stops reading every socket.
 */

export type GuardVerdict =
  { ok: true } | { ok: false; reason: 'packet_too_large' | 'malformed_length'; declared?: number };

/** Remaining Length as MQTT writes it [MQTT-2.2.3]: 7 bits a byte, high bit = more follows. */
export function encodeRemainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** Incremental fixed-header reader; feed it chunks in order. */
export class FixedHeaderReader {
  /** Bytes of the current packet's body still to skip. */
  private remaining = 0;
  /** 0: expecting a type byte; 1..4: reading Remaining Length byte n. */
  private state = 0;
  private length = 0;
  private multiplier = 1;

  constructor(private readonly maxPacketBytes: number) {}

  feed(chunk: Buffer): GuardVerdict {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, n - i);
        this.remaining -= skip;
        i += skip;
        continue;
      }
      const byte = chunk[i++]!;
      if (this.state === 0) {
        this.state = 1;
        this.length = 0;
        this.multiplier = 1;
        continue;
      }
      this.length += (byte & 0x7f) * this.multiplier;
      if (byte & 0x80) {
        if (this.state === 4) return { ok: false, reason: 'malformed_length' };
        this.state++;
        this.multiplier *= 128;
        continue;
      }
      // Whole packet = type byte + length bytes + body.
      const total = 1 + this.state + this.length;
      if (total > this.maxPacketBytes)
        return { ok: false, reason: 'packet_too_large', declared: total };
      this.remaining = this.length;
      this.state = 0;
    }
    return { ok: true };
  }
}

export interface GuardOptions {
  maxPacketBytes: number;
  onReject(verdict: Exclude<GuardVerdict, { ok: true }>): void;
}

export class GuardedConnection extends Duplex {
  private readonly reader: FixedHeaderReader;
  private paused = false;
  private wantsData = false;

  constructor(
    readonly socket: TLSSocket,
    private readonly opts: GuardOptions,
  ) {
    super({ allowHalfOpen: false });
    this.reader = new FixedHeaderReader(opts.maxPacketBytes);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.push(null));
    socket.on('close', () => this.destroy());
    socket.on('error', (err: Error) => this.destroy(err));
    socket.on('drain', () => this.emit('drain'));
    socket.pause();
  }

  private onData(chunk: Buffer): void {
    const verdict = this.reader.feed(chunk);
    if (!verdict.ok) {
      this.opts.onReject(verdict);
      this.socket.destroy();
      return;
    }
    if (!this.push(chunk)) {
      this.wantsData = false;
      this.socket.pause();
    }
  }

  override _read(): void {
    this.wantsData = true;
    if (!this.paused) this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.socket.destroyed) {
      cb(new Error('socket closed'));
      return;
    }
    this.socket.write(chunk, cb);
  }

  /**
   * Whatever Aedes wrote while the previous write was in flight (a commit releases hundreds of
   * PUBACKs at once) goes to the TLS socket as one write: one TLS record and one syscall instead
   * of one each (BENCHMARKS.md).
   */
  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    if (this.socket.destroyed) {
      cb(new Error('socket closed'));
      return;
    }
    this.socket.write(
      chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)),
      cb,
    );
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.socket.end(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.socket.destroy();
    cb(err);
  }

  /** Global backpressure (ingest saturated): stop reading from this device. */
  hold(): void {
    this.paused = true;
    this.socket.pause();
  }

  release(): void {
    this.paused = false;
    if (this.wantsData) this.socket.resume();
  }
}
