/**
 * Load generator for `npm run bench`: one child process that opens N mTLS connections and keeps
 * W QoS 1 publishes in flight on each, counting PUBACKs. MQTT packets are written and parsed by
 * hand so that the generator is cheap next to the broker it measures (MQTT.js would be the
 * bottleneck well below 100k msg/s). Run as a child: argv[2] is the path of a JSON LoadSpec; it prints one
 * JSON LoadResult line.
 */
import tls from 'node:tls';
import { connectPacket, publishPacket, reading } from './mqtt-packets.ts';

export interface LoadSpec {
  port: number;
  ca: string;
  devices: { id: string; key: string; cert: string }[];
  durationMs: number;
  window: number;
  /** Readings per message: 1 = single-reading message, >1 = {batch:[...]} */
  readingsPerMessage: number;
  kind: 'biodigester' | 'collection_point';
  /** ms since epoch of the first reading; each reading advances ts per device by a second… */
  startTs: number;
  /** …or only every N readings (default 1): a coarse clock, N readings per instant, all but one a TS_CONFLICT. */
  readingsPerInstant?: number;
}

export interface LoadResult {
  acked: number;
  sent: number;
  durationMs: number;
  errors: string[];
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const result: LoadResult = { acked: 0, sent: 0, durationMs: 0, errors: [] };
  let running = true;
  const started = performance.now();
  await Promise.all(
    spec.devices.map(
      (device, index) =>
        new Promise<void>((resolve) => {
          const topic = Buffer.from(`devices/${device.id}/telemetry`);
          let seq = 0;
          let ts = spec.startTs + index; // distinct instants per device
          let messageId = 0;
          let inFlight = 0;
          const perInstant = spec.readingsPerInstant ?? 1;
          const next = (): string => {
            const r = reading(spec.kind, seq++, ts);
            if (seq % perInstant === 0) ts += 1000;
            return r;
          };
          let pending: Buffer = Buffer.alloc(0);
          let connected = false;
          const socket = tls.connect(
            {
              host: '127.0.0.1',
              port: spec.port,
              ca: spec.ca,
              key: device.key,
              cert: device.cert,
              servername: 'localhost',
            },
            () => {
              socket.setNoDelay(true);
              socket.write(connectPacket(device.id));
            },
          );
          const send = (): void => {
            const chunks: Buffer[] = [];
            while (running && inFlight < spec.window) {
              messageId = (messageId % 65535) + 1;
              let payload: string;
              if (spec.readingsPerMessage === 1) {
                payload = next();
              } else {
                const batch: string[] = [];
                for (let i = 0; i < spec.readingsPerMessage; i++) batch.push(next());
                payload = `{"batch":[${batch.join(',')}]}`;
              }
              chunks.push(publishPacket(topic, messageId, Buffer.from(payload)));
              inFlight++;
              result.sent++;
            }
            if (chunks.length) socket.write(Buffer.concat(chunks));
          };
          socket.on('data', (data: Buffer) => {
            pending = pending.length ? Buffer.concat([pending, data]) : data;
            let i = 0;
            while (pending.length - i >= 2) {
              const type = pending[i]! >> 4;
              const len = pending[i + 1]!; // CONNACK and PUBACK have a 1-byte remaining length of 2
              if (pending.length - i < 2 + len) break;
              if (type === 2) {
                if (pending[i + 3] !== 0)
                  result.errors.push(`${device.id}: CONNACK ${pending[i + 3]}`);
                connected = true;
              } else if (type === 4) {
                inFlight--;
                if (running) result.acked++;
              }
              i += 2 + len;
            }
            pending = pending.subarray(i);
            if (connected) send();
          });
          socket.on('error', (err) => result.errors.push(`${device.id}: ${err.message}`));
          socket.on('close', () => resolve());
          setTimeout(() => {
            running = false;
            socket.end();
            setTimeout(() => socket.destroy(), 2000);
          }, spec.durationMs);
        }),
    ),
  );
  result.durationMs = Math.min(performance.now() - started, spec.durationMs);
  return result;
}

if (process.argv[2]) {
  const { readFileSync } = await import('node:fs');
  const spec = JSON.parse(readFileSync(process.argv[2], 'utf8')) as LoadSpec;
  const result = await runLoad(spec);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
