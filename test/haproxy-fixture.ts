import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

export interface HaproxyBackend {
  name: string;
  mqttPort: number;
  /** The node's HTTPS port: /readyz is its health check, and the API goes there too. */
  apiPort: number;
}

export interface Haproxy {
  /** Where devices connect (TCP passthrough: mTLS ends at the gateway). */
  mqttPort: number;
  /** The operator API through the proxy (TCP passthrough as well). */
  apiPort: number;
  log(): string;
  stop(): Promise<void>;
}

/**
 * The front door as docs/operations.md describes it ("Running clustered"): a real `haproxy`
 * (Debian's) in TCP mode on free loopback ports, a PROXY v2 header (`send-proxy-v2`) in front of
 * every device connection, each node health-checked on GET /readyz over TLS. The caller checks
 * `requireTool('haproxy')` first (test/tools.ts).
 */
export async function startHaproxy(backends: HaproxyBackend[]): Promise<Haproxy> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'thamani-haproxy-'));
  const mqttPort = await freePort();
  const apiPort = await freePort();
  const check = (b: HaproxyBackend): string =>
    `check port ${b.apiPort} check-ssl verify none inter 500ms fall 2 rise 1`;
  const cfg = `global
  maxconn 4000

defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
  option redispatch
  retries 3

frontend mqtt
  bind 127.0.0.1:${mqttPort}
  default_backend gateways_mqtt

backend gateways_mqtt
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
${backends.map((b) => `  server ${b.name} 127.0.0.1:${b.mqttPort} send-proxy-v2 ${check(b)}`).join('\n')}

frontend api
  bind 127.0.0.1:${apiPort}
  default_backend gateways_api

backend gateways_api
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
${backends.map((b) => `  server ${b.name} 127.0.0.1:${b.apiPort} ${check(b)}`).join('\n')}
`;
  const file = path.join(dir, 'haproxy.cfg');
  writeFileSync(file, cfg);
  let log = '';
  const child: ChildProcess = spawn('haproxy', ['-db', '-f', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const s of [child.stdout, child.stderr])
    s?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-16_000)));
  await waitFor(
    `haproxy on ${mqttPort}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`haproxy exited: ${log}`);
      return accepts(mqttPort);
    },
    Boolean,
    60_000,
  );
  return {
    mqttPort,
    apiPort,
    log: () => log,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}
