import net from 'node:net';
import { parseProxyV2, type ProxyPeer, type ProxyVerdict } from './proxy-protocol.ts';

/**
 * The door in front of the TLS listener. A TCP connection is someone nobody knows until it has
 * finished the TLS handshake (with a certificate of ours) and sent CONNECT; until then it costs
 * a socket, a file descriptor and TLS state, and Node's `handshakeTimeout` only measures
 * inactivity (a peer trickling one byte at a time keeps it alive), while Aedes' connectTimeout
 * starts only once the handshake is done. So:
 *
 * - every accepted socket gets one absolute deadline, from accept to CONNECT
 *   (`MQTT_CONNECT_TIMEOUT_MS`), after which it is destroyed, whatever stage it is in;
 * - such pending sockets are capped per source address and in total, and a socket beyond a cap
 *   is closed on accept, before a single TLS byte is spent on it.
 *
 * - in a reconnect storm, sockets beyond what the gateway can handshake within
 *   `handshakeTargetMs` (its recent rate of CONNECTs × that time, never under a floor) are
 *   closed on accept too. Otherwise every socket waits its turn for the CPU, most wait longer
 *   than the device's own connect timeout, and the gateway spends itself on handshakes whose
 *   device has already given up (measured: stock Aedes and we alike, at 1,000 devices on this
 *   machine, more attempts timed out than succeeded). A device refused here retries after its
 *   backoff (docs/device-contract.md). It is a TCP close, not CONNACK 3: a CONNACK travels inside
 *   TLS, so it would cost the very handshake the refusal is there to save.
 *
 * Sockets that pass are handed to the TLS server with `emit('connection')`, as Node's own HTTP
 * and TLS servers receive theirs.
 */
export interface AdmissionOptions {
  connectTimeoutMs: number;
  /** Sockets that have not sent CONNECT yet, per source address. */
  maxPendingPerAddress: number;
  /** ... and in total. */
  maxPending: number;
  /** Sockets waiting for their handshake are capped at the recent CONNECT rate × this (0 or absent: no such cap; shipped 8 s)… */
  handshakeTargetMs?: number;
  /** …but never under this (default 50; shipped 500): the rate is measured from what is let through. */
  handshakeFloor?: number;
  /** The window the handshake rate is measured over (default 5 s). */
  handshakeWindowMs?: number;
}

export type AdmissionRefusal =
  | 'pending_per_address'
  | 'pending_total'
  | 'handshake_capacity'
  /** PROXY protocol on: a connection from a source that is not a trusted proxy. */
  | 'proxy_untrusted'
  /** PROXY protocol on: a header that is missing, malformed or not version 2. */
  | 'proxy_header';

/**
 * What the gateway can handshake: the rate of completed handshakes (CONNECTs received) over the
 * last `windowMs`, and from it how many sockets may wait for theirs. Pure (time is passed in).
 */
export class HandshakeBudget {
  private readonly buckets: number[];
  private readonly bucketMs: number;
  private last = -1;

  constructor(
    private readonly opts: {
      targetMs: number;
      floor: number;
      ceiling: number;
      windowMs?: number;
      buckets?: number;
    },
  ) {
    this.buckets = new Array<number>(opts.buckets ?? 10).fill(0);
    this.bucketMs = (opts.windowMs ?? 5000) / this.buckets.length;
  }

  private advance(nowMs: number): number {
    const slot = Math.floor(nowMs / this.bucketMs);
    if (this.last < 0 || slot - this.last >= this.buckets.length) this.buckets.fill(0);
    else for (let s = this.last + 1; s <= slot; s++) this.buckets[s % this.buckets.length] = 0;
    this.last = Math.max(this.last, slot);
    return slot;
  }

  /** A handshake completed (its CONNECT arrived). */
  completed(nowMs: number): void {
    const slot = this.advance(nowMs);
    this.buckets[slot % this.buckets.length]!++;
  }

  /** Handshakes per second over the window. */
  rate(nowMs: number): number {
    this.advance(nowMs);
    return this.buckets.reduce((a, b) => a + b, 0) / ((this.bucketMs * this.buckets.length) / 1000);
  }

  /** How many sockets may wait for their handshake now. */
  limit(nowMs: number): number {
    return Math.min(
      this.opts.ceiling,
      Math.max(this.opts.floor, Math.ceil((this.rate(nowMs) * this.opts.targetMs) / 1000)),
    );
  }
}

/** Pure bookkeeping of pending sockets per address (IPv6: per /64, what one host usually gets). */
export class PendingCounts {
  private readonly byAddress = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly opts: Pick<AdmissionOptions, 'maxPendingPerAddress' | 'maxPending'>,
  ) {}

  get size(): number {
    return this.total;
  }

  /** Counts the socket in, or says which cap refuses it (nothing is counted then). */
  admit(address: string): AdmissionRefusal | undefined {
    const key = addressKey(address);
    const n = this.byAddress.get(key) ?? 0;
    if (n >= this.opts.maxPendingPerAddress) return 'pending_per_address';
    if (this.total >= this.opts.maxPending) return 'pending_total';
    this.byAddress.set(key, n + 1);
    this.total++;
    return undefined;
  }

  release(address: string): void {
    const key = addressKey(address);
    const n = this.byAddress.get(key);
    if (n === undefined) return;
    if (n <= 1) this.byAddress.delete(key);
    else this.byAddress.set(key, n - 1);
    this.total--;
  }

  addresses(): number {
    return this.byAddress.size;
  }
}

/** The key a cap counts under: an IPv4 address (also IPv4-mapped), or an IPv6 /64. */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = address.includes('::') && tail ? tail.split(':') : [];
  const groups = address.includes('::')
    ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

interface Pending {
  socket: net.Socket;
  address: string;
  timer: NodeJS.Timeout;
}

export interface AdmissionDeps {
  options: AdmissionOptions;
  /** Hands an admitted socket on (to the TLS server). */
  handOver(socket: net.Socket): void;
  onRefused?(reason: AdmissionRefusal, address: string): void;
  onTimeout?(address: string): void;
  /** Behind a load balancer: every connection starts with a PROXY v2 header from one of these. */
  proxy?: { trusted(address: string | undefined): boolean };
}

export function createAdmission(deps: AdmissionDeps) {
  const { options } = deps;
  const counts = new PendingCounts(options);
  const budget = options.handshakeTargetMs
    ? new HandshakeBudget({
        targetMs: options.handshakeTargetMs,
        floor: options.handshakeFloor ?? 50,
        ceiling: options.maxPending,
        windowMs: options.handshakeWindowMs ?? 5000,
      })
    : undefined;
  // Keyed by the peer's address and port: the TLS socket made from a raw one reports the same
  // pair, so the broker can say "CONNECT arrived" from the TLS socket it sees.
  const pending = new Map<string, Pending>();
  const counters = {
    refusedPerAddress: 0,
    refusedTotal: 0,
    refusedCapacity: 0,
    refusedProxy: 0,
    timedOut: 0,
  };

  const settle = (key: string, entry: Pending): boolean => {
    if (pending.get(key) !== entry) return false;
    pending.delete(key);
    clearTimeout(entry.timer);
    counts.release(entry.address);
    return true;
  };

  const refuse = (socket: net.Socket, refusal: AdmissionRefusal, address: string): void => {
    if (refusal === 'pending_per_address') counters.refusedPerAddress++;
    else if (refusal === 'handshake_capacity') counters.refusedCapacity++;
    else if (refusal === 'proxy_untrusted' || refusal === 'proxy_header') counters.refusedProxy++;
    else counters.refusedTotal++;
    socket.destroy();
    deps.onRefused?.(refusal, address);
  };

  const admit = (socket: net.Socket): void => {
    const address = socket.remoteAddress ?? 'unknown';
    const capacity = budget?.limit(performance.now()) ?? Infinity;
    const refusal =
      capacity < options.maxPending && counts.size >= capacity
        ? 'handshake_capacity'
        : counts.admit(address);
    if (refusal) return refuse(socket, refusal, address);
    const key = `${address}|${socket.remotePort ?? ''}`;
    const entry: Pending = {
      socket,
      address,
      timer: setTimeout(() => {
        if (!settle(key, entry)) return;
        counters.timedOut++;
        socket.destroy();
        deps.onTimeout?.(address);
      }, options.connectTimeoutMs),
    };
    pending.set(key, entry);
    socket.once('close', () => settle(key, entry));
    deps.handOver(socket);
  };

  const server = net.createServer((socket) => {
    // A reset before TLS has attached its own listeners must not become an uncaught 'error'.
    socket.on('error', () => undefined);
    if (!deps.proxy) return admit(socket);
    const proxyAddress = socket.remoteAddress ?? 'unknown';
    if (!deps.proxy.trusted(socket.remoteAddress))
      return refuse(socket, 'proxy_untrusted', proxyAddress);
    // The header, within the connect deadline; then the socket goes on as from the device itself.
    readProxyHeader(socket, options.connectTimeoutMs, (verdict) => {
      if (verdict.kind !== 'ok') return refuse(socket, 'proxy_header', proxyAddress);
      if (verdict.peer) adoptPeer(socket, verdict.peer);
      admit(socket);
    });
  });

  return {
    server,
    counters,
    /** Sockets admitted that have not sent CONNECT yet. */
    pending: (): number => counts.size,
    /** CONNECT arrived on the connection from this peer: its deadline is met and it leaves the caps. */
    connectReceived(remoteAddress: string | undefined, remotePort: number | undefined): void {
      const key = `${remoteAddress ?? 'unknown'}|${remotePort ?? ''}`;
      const entry = pending.get(key);
      if (entry && settle(key, entry)) budget?.completed(performance.now());
    },
    destroyPending(): void {
      for (const [key, entry] of [...pending]) {
        settle(key, entry);
        entry.socket.destroy();
      }
    },
  };
}

export type Admission = ReturnType<typeof createAdmission>;

/**
 * Reads a PROXY v2 header off the front of `socket` and calls `done` once: ok (the bytes after
 * the header are put back for TLS to read), invalid, or nothing complete within `timeoutMs`
 * (or the socket closing) as invalid.
 */
function readProxyHeader(
  socket: net.Socket,
  timeoutMs: number,
  done: (verdict: ProxyVerdict) => void,
): void {
  let buf = Buffer.alloc(0);
  let settled = false;
  const finish = (verdict: ProxyVerdict): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.removeListener('data', onData);
    socket.removeListener('close', onClose);
    socket.pause();
    if (verdict.kind === 'ok' && buf.length > verdict.consumed)
      socket.unshift(buf.subarray(verdict.consumed));
    done(verdict);
  };
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    const verdict = parseProxyV2(buf);
    if (verdict.kind !== 'incomplete') finish(verdict);
  };
  const onClose = (): void => finish({ kind: 'invalid', reason: 'closed before the header' });
  const timer = setTimeout(
    () => finish({ kind: 'invalid', reason: 'no PROXY header in time' }),
    timeoutMs,
  );
  socket.on('data', onData);
  socket.once('close', onClose);
}

/**
 * The device's address, from the proxy's header, as the socket's own: every later reader
 * (caps, logs, security events, the session) sees it. The TLS socket built on this one reads
 * it from here (adoptedPeer).
 */
function adoptPeer(socket: net.Socket, peer: ProxyPeer): void {
  Object.defineProperty(socket, 'remoteAddress', { value: peer.address, configurable: true });
  Object.defineProperty(socket, 'remotePort', { value: peer.port, configurable: true });
  Object.defineProperty(socket, 'remoteFamily', {
    value: net.isIP(peer.address) === 6 ? 'IPv6' : 'IPv4',
    configurable: true,
  });
}

/**
 * Gives a TLS socket the device address its raw socket was given by a PROXY header (Node's TLS
 * socket reads the peer from the TCP handle: the proxy's). `_parent` is Node's link from a
 * server-side TLS socket to the socket it wraps.
 */
export function adoptProxiedPeer(tlsSocket: net.Socket): void {
  const parent = (tlsSocket as net.Socket & { _parent?: net.Socket })._parent;
  if (!parent || !Object.hasOwn(parent, 'remoteAddress')) return;
  adoptPeer(tlsSocket, { address: parent.remoteAddress!, port: parent.remotePort! });
}
