/**
 * Handshake load for `npm run bench -- enrol`: one child process whose workers each hold one
 * device identity and open mTLS connections to the gateway's device listener one after the
 * other, as devices reconnecting do. `tls`: the TLS handshake only (closed at secureConnect);
 * `connect`: the handshake, an MQTT CONNECT and its CONNACK (what a reconnect costs the gateway:
 * the registry lookup and presence too). Run as a child: argv[2] is the path of a JSON
 * HandshakeSpec; it prints one JSON HandshakeResult line.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { encodeRemainingLength } from '../broker/packet-guard.ts';

export interface HandshakeSpec {
  port: number;
  ca: string;
  devices: { id: string; key: string; cert: string }[];
  durationMs: number;
  mode: 'tls' | 'connect';
}

export interface HandshakeResult {
  completed: number;
  durationMs: number;
  /** Milliseconds from connect() to secureConnect (tls) or to the CONNACK (connect), sorted samples' percentiles. */
  p50Ms: number;
  p99Ms: number;
  errors: Record<string, number>;
}

function connectPacket(clientId: string): Buffer {
  const id = Buffer.from(clientId);
  const variable = Buffer.concat([
    Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 60, id.length >> 8, id.length & 0xff]),
    id,
  ]);
  return Buffer.concat([Buffer.from([0x10]), encodeRemainingLength(variable.length), variable]);
}

function once(spec: HandshakeSpec, device: HandshakeSpec['devices'][number]): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: spec.port,
      servername: 'localhost',
      ca: spec.ca,
      key: device.key,
      cert: device.cert,
    });
    socket.setTimeout(30_000, () => socket.destroy(new Error('timeout')));
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      if (spec.mode === 'tls') {
        resolve(performance.now() - t0);
        socket.destroy();
        return;
      }
      socket.write(connectPacket(device.id));
      socket.once('data', (b: Buffer) => {
        if (b[0] === 0x20 && b[3] === 0) resolve(performance.now() - t0);
        else reject(new Error(`connack:${b[3]}`));
        socket.destroy();
      });
    });
    socket.once('close', () => reject(new Error('closed')));
  });
}

async function main(): Promise<void> {
  const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as HandshakeSpec;
  const samples: number[] = [];
  const errors: Record<string, number> = {};
  const start = performance.now();
  const end = start + spec.durationMs;
  await Promise.all(
    spec.devices.map(async (device) => {
      while (performance.now() < end) {
        try {
          samples.push(await once(spec, device));
        } catch (err) {
          const key = err instanceof Error ? err.message : String(err);
          errors[key] = (errors[key] ?? 0) + 1;
        }
      }
    }),
  );
  samples.sort((a, b) => a - b);
  const at = (q: number): number =>
    samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0;
  const result: HandshakeResult = {
    completed: samples.length,
    durationMs: performance.now() - start,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    errors,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
