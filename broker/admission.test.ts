import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import tls from 'node:tls';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerGatewayMetrics } from '../app/gateway-metrics.ts';
import { addressKey, PendingCounts } from './admission.ts';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';

describe('PendingCounts', () => {
  it('caps per address and in total, refuses without counting, and releases', () => {
    const c = new PendingCounts({ maxPendingPerAddress: 2, maxPending: 3 });
    expect([c.admit('10.0.0.1'), c.admit('::ffff:10.0.0.1'), c.admit('10.0.0.1')]).toEqual([
      undefined,
      undefined,
      'pending_per_address',
    ]);
    expect([c.admit('10.0.0.2'), c.admit('10.0.0.3')]).toEqual([undefined, 'pending_total']);
    expect(c.size).toBe(3);
    c.release('10.0.0.1');
    expect(c.admit('10.0.0.3')).toBeUndefined();
    for (const a of ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.9']) c.release(a);
    expect(c.size).toBe(0);
    expect(c.addresses()).toBe(0);
  });

  it('counts IPv6 per /64 and IPv4-mapped addresses as IPv4', () => {
    expect(addressKey('::ffff:127.0.0.2')).toBe('127.0.0.2');
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
  });
});

const TIMEOUT_MS = 3000;
const PER_ADDRESS = 100;
const STALLED = 2000;

/** Sockets held by the test; each records when it opened and when the gateway closed it. */
interface Held {
  socket: net.Socket;
  openedAt: number;
  closedAt: number | undefined;
  kind: string;
}

function fdLimit(): number {
  const out = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim();
  return out === 'unlimited' ? Infinity : Number(out);
}

function heapAfterGc(): number {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The first bytes a real TLS client sends (a ClientHello), to stall mid-handshake with. */
async function clientHello(): Promise<Buffer> {
  return new Promise((resolve) => {
    const sink = net.createServer((s) =>
      s.once('data', (d: Buffer) => (resolve(d), s.destroy(), sink.close())),
    );
    sink.listen(0, '127.0.0.1', () => {
      const c = tls.connect({
        port: (sink.address() as net.AddressInfo).port,
        host: '127.0.0.1',
        rejectUnauthorized: false,
      });
      c.on('error', () => undefined);
    });
  });
}

describe('connections that never finish (real TLS listener)', () => {
  let f: BrokerFixture;
  beforeAll(async () => {
    f = await startBrokerFixture(
      {
        connectTimeoutMs: TIMEOUT_MS,
        maxPendingPerAddress: PER_ADDRESS,
        maxPending: 5000,
        maxConnections: 10_000,
      },
      { ingest: {} },
    );
  });

  /** A broker metric as Prometheus scrapes it (app/gateway-metrics.ts). */
  async function metric(name: string): Promise<number> {
    const registry = new Registry();
    registerGatewayMetrics(registry, { broker: f.broker, ingest: f.ingest! });
    return (await registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
  }
  afterAll(async () => {
    await f?.close();
  });

  function hold(
    kind: string,
    localAddress: string,
    onConnect: (s: net.Socket) => void = () => undefined,
  ): Promise<Held> {
    return new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: f.port, localAddress });
      const held: Held = { socket, openedAt: 0, closedAt: undefined, kind };
      socket.on('error', () => undefined);
      socket.once('connect', () => {
        held.openedAt = performance.now();
        onConnect(socket);
        resolve(held);
      });
      socket.once('close', () => {
        held.closedAt = performance.now();
        if (!held.openedAt) resolve(held);
      });
    });
  }

  it(`destroys ${STALLED} stalled sockets (idle, mid-handshake, trickling, TLS without CONNECT) within the timeout + 1 s, memory returns, a device still connects`, async () => {
    expect(
      fdLimit(),
      'this test holds ~4,000 sockets in one process: raise `ulimit -n` to 5000 or more',
    ).toBeGreaterThanOrEqual(5000);
    const hello = await clientHello();
    const device = await f.addDevice('bd-adm-real');
    // Warm up (TLS, MQTT, registry paths), then the baseline.
    await (await f.connect(device, { clientId: 'bd-adm-real' })).endAsync();
    // A device connected before the flood, kept through it: the deadline ends at its CONNECT.
    const stayCert = await f.addDevice('bd-adm-stay');
    const stay = await f.connect(stayCert, { clientId: 'bd-adm-stay' });
    let stayClosed = false;
    stay.on('close', () => (stayClosed = true));
    const baseline = heapAfterGc();
    const rssBaseline = process.memoryUsage().rss;
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();

    const tlsNoConnect: tls.TLSSocket[] = [];
    const held: Held[] = [];
    // Opened in batches that the gateway has accepted before the next: a socket's lifetime is then
    // measured from (about) its accept, not from a turn in the kernel's accept queue.
    for (let batch = 0; batch < STALLED / PER_ADDRESS; batch++) {
      // 20 source addresses (127.0.0.2 …), PER_ADDRESS sockets each: all within the caps.
      const from = `127.0.0.${2 + batch}`;
      const accepted = f.broker.pendingConnections() + f.broker.counters.connectTimeouts;
      held.push(
        ...(await Promise.all(
          Array.from({ length: PER_ADDRESS }, (_, i) => {
            const kind = ['idle', 'mid-handshake', 'trickle', 'idle'][i % 4]!;
            return hold(kind, from, (s) => {
              if (kind === 'mid-handshake') s.write(hello.subarray(0, hello.length - 20));
              if (kind === 'trickle') {
                // One byte of a ClientHello every 500 ms: never idle, never finished.
                let n = 0;
                const timer = setInterval(
                  () =>
                    s.destroyed || n >= hello.length
                      ? clearInterval(timer)
                      : s.write(hello.subarray(n, ++n)),
                  500,
                );
                s.once('close', () => clearInterval(timer));
              }
            });
          }),
        )),
      );
      await until(
        'the batch to be accepted',
        () =>
          f.broker.pendingConnections() + f.broker.counters.connectTimeouts >=
          accepted + PER_ADDRESS,
      );
    }
    // A few that finish the handshake with a valid certificate and then never send CONNECT.
    const tlsHeld = Array.from({ length: 10 }, () => {
      const s = tls.connect({
        host: '127.0.0.1',
        port: f.port,
        ca: f.caPem,
        key: device.key,
        cert: device.cert,
        servername: 'localhost',
      });
      tlsNoConnect.push(s);
      const h: Held = { socket: s, openedAt: 0, closedAt: undefined, kind: 'tls-no-connect' };
      s.on('error', () => undefined);
      return new Promise<Held>((resolve) => {
        s.once('connect', () => (h.openedAt = performance.now()));
        s.once('secureConnect', () => resolve(h));
        s.once('close', () => ((h.closedAt = performance.now()), resolve(h)));
      });
    });
    const sockets = [...held, ...(await Promise.all(tlsHeld))];
    const peakPending = f.broker.pendingConnections();
    const peakHeap = heapAfterGc();
    const rssPeak = process.memoryUsage().rss;

    // While they are held, a real device connects and publishes.
    const client = await f.connect(device, { clientId: 'bd-adm-real' });
    await client.publishAsync('devices/bd-adm-real/telemetry', '{"seq":1}', { qos: 1 });
    await client.endAsync();

    await until('every stalled socket to be closed by the gateway', () =>
      sockets.every((s) => s.closedAt !== undefined),
    ).catch((err: unknown) => {
      const open = sockets.filter((s) => s.closedAt === undefined);
      throw new Error(
        `${String(err)}: ${open.length} still open (${[...new Set(open.map((s) => s.kind))].join(', ')}), ${f.broker.pendingConnections()} pending in the gateway`,
      );
    });
    lag.disable();
    const maxLagMs = lag.max / 1e6;
    const lifetimes = sockets.map((s) => ({
      kind: s.kind,
      ms: Math.round(s.closedAt! - s.openedAt),
    }));
    const late = lifetimes.filter((l) => l.ms > TIMEOUT_MS + 1000 + maxLagMs);
    console.info(
      `stalled sockets: ${sockets.length}, pending at peak ${peakPending}, longest lifetime ${Math.max(...lifetimes.map((l) => l.ms))} ms, max event-loop lag ${Math.round(maxLagMs)} ms`,
    );
    expect(late).toEqual([]);
    expect(await metric('thamani_mqtt_connect_timeouts_total')).toBeGreaterThanOrEqual(STALLED);
    await until('the gateway to forget them', () => f.broker.pendingConnections() === 0);
    expect(await metric('thamani_mqtt_pending_connections')).toBe(0);

    const after = heapAfterGc();
    console.info(
      `heap: baseline ${(baseline / 1e6).toFixed(1)} MB, with ${STALLED} held ${(peakHeap / 1e6).toFixed(1)} MB, after ${(after / 1e6).toFixed(1)} MB; rss: baseline ${(rssBaseline / 1e6).toFixed(0)} MB, held ${(rssPeak / 1e6).toFixed(0)} MB, after ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`,
    );
    expect(after - baseline).toBeLessThan(Math.max(8e6, 0.25 * (peakHeap - baseline)));

    expect(stayClosed).toBe(false);
    await stay.publishAsync('devices/bd-adm-stay/telemetry', '{"seq":1}', { qos: 1 });
    await stay.endAsync();
    // And afterwards, as before.
    await (await f.connect(device, { clientId: 'bd-adm-real' })).endAsync();
    for (const s of tlsNoConnect) s.destroy();
  }, 180_000);

  it('closes sockets beyond the per-address cap on accept, before any TLS, and counts them', async () => {
    const before = await metric('thamani_mqtt_refused_before_handshake_total');
    const sockets = await Promise.all(
      Array.from({ length: PER_ADDRESS + 50 }, () => hold('idle', '127.0.0.40')),
    );
    await until(
      'the refused sockets to be closed',
      () => sockets.filter((s) => s.closedAt !== undefined).length >= 50,
    );
    expect((await metric('thamani_mqtt_refused_before_handshake_total')) - before).toBe(50);
    // The rest are held until their deadline; another address is not affected.
    const device = await f.addDevice('bd-adm-other');
    await (await f.connect(device, { clientId: 'bd-adm-other' })).endAsync();
    await until('the admitted ones to time out', () =>
      sockets.every((s) => s.closedAt !== undefined),
    );
    for (const s of sockets) s.socket.destroy();
  }, 60_000);
});

describe('the total cap on sockets without CONNECT', () => {
  let f: BrokerFixture;
  beforeAll(async () => {
    f = await startBrokerFixture({
      connectTimeoutMs: 5000,
      maxPendingPerAddress: 1000,
      maxPending: 30,
    });
  });
  afterAll(async () => {
    await f?.close();
  });

  it('closes connections beyond it on accept, whatever their address; room comes back when they time out', async () => {
    const open = (from: string): Promise<{ closedAt?: number }> =>
      new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: f.port, localAddress: from });
        const h: { closedAt?: number } = {};
        s.on('error', () => undefined);
        s.once('connect', () => resolve(h));
        s.once('close', () => ((h.closedAt = performance.now()), resolve(h)));
      });
    const held = await Promise.all(
      Array.from({ length: 40 }, (_, i) => open(`127.0.0.${60 + (i % 10)}`)),
    );
    await until(
      'the ten beyond the cap to be closed',
      () => held.filter((h) => h.closedAt !== undefined).length >= 10,
    );
    expect(f.broker.counters.refusedBeforeHandshake).toBe(10);
    await until('the rest to time out', () => held.every((h) => h.closedAt !== undefined));
    const device = await f.addDevice('bd-adm-total');
    await (await f.connect(device, { clientId: 'bd-adm-total' })).endAsync();
  }, 60_000);
});
