/**
 * The storm bench's fleet, in a child process of its own: N devices over mTLS, each from its own
 * loopback address (127.10.x.y, as N devices come from N addresses), that connect, publish one
 * reading (QoS 1) per connection and keep the session with PINGREQ; whenever a connection is
 * lost or refused they reconnect after the device contract's backoff (simulators/backoff.ts),
 * offering their last TLS session ticket when `resume` is set.
 *
 * Driven over stdin/stdout, one JSON line each way:
 *   → {"type":"up",…}          once every device has had a PUBACK
 *   ← mark                     a new phase starts (the parent restarts the gateway next)
 *   → {"type":"storm",…}       once every device has had a PUBACK on a connection made after mark
 */
import { readFileSync } from 'node:fs';
import readline from 'node:readline';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import tls from 'node:tls';
import { backoffDelay, type BackoffOptions } from '../simulators/backoff.ts';
import { connectPacket, publishPacket, reading } from './mqtt-packets.ts';

export interface StormSpec {
  port: number;
  ca: string;
  devices: { id: string; key: string; cert: string }[];
  /** TCP start to CONNACK; beyond it the attempt is abandoned, as a device's MQTT client does. */
  connectTimeoutMs: number;
  backoff: BackoffOptions;
  /** Offer the last TLS session (ticket) when reconnecting. */
  resume: boolean;
  startTs: number;
  /** The seq before the first reading: a device keeps counting across rounds, as across reconnects (device contract). */
  firstSeq: number;
}

export interface PhaseResult {
  type: 'up' | 'storm';
  devices: number;
  /** From the phase's start (first connection lost, for a storm) to the last device publishing again. */
  durationMs: number;
  handshakes: number;
  resumed: number;
  /** Handshakes completed per second over the phase, and in its busiest second. */
  handshakesPerSecond: number;
  peakHandshakesPerSecond: number;
  connectToConnackMs: { p50: number; p99: number; max: number };
  /** From the TCP connect to the CONNACK (handshake included), accepted connections only. */
  tcpToConnackMs: { p50: number; p99: number; max: number };
  connack: Record<string, number>;
  attempts: number;
  timeouts: number;
  /** Connections closed before the handshake finished (refused at accept, reset). */
  lostBeforeHandshake: number;
  acked: number;
  /** Epoch ms (both processes share the clock): first connection lost (storm) or phase start, and the last device back. */
  startAt: number;
  endAt: number;
  /** Attempts each device needed in this phase (1 = the first came through): percentiles and counts. */
  attemptsPerDevice: {
    p50: number;
    p90: number;
    p99: number;
    max: number;
    counts: Record<string, number>;
  };
  /** Connections lost before the handshake, by the socket's error code (ECONNREFUSED: nobody listening). */
  lostBy: Record<string, number>;
  /** From the phase's start: the last ECONNREFUSED, the first CONNACK 0. */
  lastRefusedMs: number;
  firstConnackMs: number;
  /** From the phase's start to the TCP start of each device's successful attempt (so the tail is backoff, or handshakes). */
  backStartMs: { p50: number; p90: number; p99: number; max: number };
  /** This load generator's own CPU over the phase and its event-loop delay: if it is saturated, the numbers are its, not the gateway's. */
  loadCpuMs: number;
  loadLoopDelayMs: { p99: number; max: number };
}

const percentile = (xs: number[], p: number): number => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!);
};

export function runStorm(
  spec: StormSpec,
  emit: (r: PhaseResult) => void,
): { mark(): void; stop(): void } {
  let phase: PhaseResult['type'] = 'up';
  let phaseStart = performance.now();
  let firstLoss: number | undefined;
  let stopped = false;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let stats = fresh();
  function fresh() {
    loop.reset();
    return {
      cpu: process.cpuUsage(),
      handshakes: 0,
      resumed: 0,
      perSecond: new Map<number, number>(),
      c2c: [] as number[],
      t2c: [] as number[],
      connack: {} as Record<string, number>,
      attempts: 0,
      timeouts: 0,
      lost: 0,
      acked: 0,
      done: new Set<number>(),
      attemptsOf: new Map<number, number>(),
      lostBy: {} as Record<string, number>,
      lastRefused: 0,
      firstConnack: 0,
      backStart: [] as number[],
    };
  }
  const finish = (): void => {
    const end = performance.now();
    const start = phase === 'storm' ? (firstLoss ?? phaseStart) : phaseStart;
    const durationMs = Math.round(end - start);
    const attempts = [...stats.attemptsOf.values()];
    const counts: Record<string, number> = {};
    for (const a of attempts) {
      const k = a >= 8 ? '8+' : String(a);
      counts[k] = (counts[k] ?? 0) + 1;
    }
    const since = (t: number): number => (t ? Math.round(t - start) : -1);
    const cpu = process.cpuUsage(stats.cpu);
    const back = stats.backStart.map((t) => t - start);
    emit({
      type: phase,
      devices: spec.devices.length,
      durationMs,
      handshakes: stats.handshakes,
      resumed: stats.resumed,
      handshakesPerSecond: Math.round(stats.handshakes / (durationMs / 1000)),
      peakHandshakesPerSecond: Math.max(0, ...stats.perSecond.values()),
      connectToConnackMs: {
        p50: percentile(stats.c2c, 50),
        p99: percentile(stats.c2c, 99),
        max: percentile(stats.c2c, 100),
      },
      tcpToConnackMs: {
        p50: percentile(stats.t2c, 50),
        p99: percentile(stats.t2c, 99),
        max: percentile(stats.t2c, 100),
      },
      connack: stats.connack,
      attempts: stats.attempts,
      timeouts: stats.timeouts,
      lostBeforeHandshake: stats.lost,
      acked: stats.acked,
      startAt: Math.round(performance.timeOrigin + start),
      endAt: Math.round(performance.timeOrigin + end),
      attemptsPerDevice: {
        p50: percentile(attempts, 50),
        p90: percentile(attempts, 90),
        p99: percentile(attempts, 99),
        max: percentile(attempts, 100),
        counts,
      },
      lostBy: stats.lostBy,
      lastRefusedMs: since(stats.lastRefused),
      firstConnackMs: since(stats.firstConnack),
      backStartMs: {
        p50: percentile(back, 50),
        p90: percentile(back, 90),
        p99: percentile(back, 99),
        max: percentile(back, 100),
      },
      loadCpuMs: Math.round((cpu.user + cpu.system) / 1000),
      loadLoopDelayMs: {
        p99: Math.round(loop.percentile(99) / 1e6),
        max: Math.round(loop.max / 1e6),
      },
    });
  };
  const sockets = new Set<tls.TLSSocket>();

  spec.devices.forEach((device, index) => {
    const topic = Buffer.from(`devices/${device.id}/telemetry`);
    const localAddress = `127.10.${(index >> 8) & 255}.${index & 255}`;
    let attempt = 0;
    let seq = spec.firstSeq;
    let messageId = 0;
    let session: Buffer | undefined;
    // Made once, as a device loads its key once: a context per attempt (PEM parsing, the RSA key)
    // cost this one process more than the gateway's handshake, and the storm measured the generator.
    let context: tls.SecureContext | undefined;
    const connect = (): void => {
      if (stopped) return;
      const connectedPhase = phase;
      const s = stats;
      s.attempts++;
      s.attemptsOf.set(index, (s.attemptsOf.get(index) ?? 0) + 1);
      const tcpStart = performance.now();
      let errorCode = 'closed';
      let connectSent = 0;
      let secure = false;
      let buf: Buffer = Buffer.alloc(0);
      // localAddress is passed on to net.connect (node's docs: "any socket.connect() option").
      const options: tls.ConnectionOptions & { localAddress: string } = {
        host: '127.0.0.1',
        port: spec.port,
        localAddress,
        secureContext: (context ??= tls.createSecureContext({
          ca: spec.ca,
          key: device.key,
          cert: device.cert,
        })),
        servername: 'localhost',
        ...(spec.resume && session ? { session } : {}),
      };
      const socket = tls.connect(options);
      sockets.add(socket);
      const deadline = setTimeout(() => {
        s.timeouts++;
        errorCode = 'timeout';
        socket.destroy();
      }, spec.connectTimeoutMs);
      let ping: NodeJS.Timeout | undefined;
      socket.on('session', (ticket: Buffer) => (session = ticket));
      socket.on('secureConnect', () => {
        secure = true;
        s.handshakes++;
        if (socket.isSessionReused()) s.resumed++;
        const second = Math.floor((performance.now() - phaseStart) / 1000);
        s.perSecond.set(second, (s.perSecond.get(second) ?? 0) + 1);
        socket.setNoDelay(true);
        connectSent = performance.now();
        socket.write(connectPacket(device.id));
      });
      socket.on('data', (data: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, data]) : data;
        while (buf.length >= 2 && buf.length >= 2 + buf[1]!) {
          const type = buf[0]! >> 4;
          if (type === 2) {
            clearTimeout(deadline);
            const code = buf[3]!;
            s.connack[code] = (s.connack[code] ?? 0) + 1;
            if (code !== 0) {
              socket.destroy();
              return;
            }
            const now = performance.now();
            s.firstConnack ||= now;
            if (connectedPhase === phase && s === stats && !s.done.has(index))
              s.backStart.push(tcpStart);
            s.c2c.push(now - connectSent);
            s.t2c.push(now - tcpStart);
            attempt = 0;
            seq++;
            messageId = (messageId % 65535) + 1;
            socket.write(
              publishPacket(
                topic,
                messageId,
                Buffer.from(reading('biodigester', seq, spec.startTs + seq * 1000 + index)),
              ),
            );
            ping = setInterval(() => socket.write(Buffer.from([0xc0, 0x00])), 30_000);
          } else if (type === 4) {
            s.acked++;
            if (connectedPhase === phase && s === stats && !s.done.has(index)) {
              s.done.add(index);
              if (s.done.size === spec.devices.length) finish();
            }
          }
          buf = buf.subarray(2 + buf[1]!);
        }
      });
      socket.on('error', (err: NodeJS.ErrnoException) => (errorCode = err.code ?? err.message));
      socket.on('close', () => {
        clearTimeout(deadline);
        clearInterval(ping);
        sockets.delete(socket);
        if (!secure) {
          s.lost++;
          s.lostBy[errorCode] = (s.lostBy[errorCode] ?? 0) + 1;
          if (errorCode === 'ECONNREFUSED') s.lastRefused = performance.now();
        }
        if (phase === 'storm' && firstLoss === undefined) firstLoss = performance.now();
        if (!stopped) setTimeout(connect, backoffDelay(attempt++, Math.random, spec.backoff));
      });
    };
    connect();
  });

  return {
    mark() {
      phase = 'storm';
      phaseStart = performance.now();
      firstLoss = undefined;
      stats = fresh();
    },
    stop() {
      stopped = true;
      for (const s of sockets) s.destroy();
    },
  };
}

if (process.argv[2]) {
  const spec = JSON.parse(readFileSync(process.argv[2], 'utf8')) as StormSpec;
  const storm = runStorm(spec, (r) => process.stdout.write(`${JSON.stringify(r)}\n`));
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 'mark') storm.mark();
    if (line === 'stop') {
      storm.stop();
      setTimeout(() => process.exit(0), 200);
    }
  });
}
