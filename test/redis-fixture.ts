import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

export interface RedisServer {
  url: string;
  port: number;
  /** Kills it (SIGKILL by default: a crash, not a shutdown) and waits for its exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and data directory (its append-only file reloaded). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real `redis-server` (Debian's) on a free loopback port, its data (append-only file, fsync
 * always) in a directory of its own: what the gateway nodes of a cluster test share. The caller
 * checks `requireTool('redis-server')` first (test/tools.ts).
 */
export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'thamani-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let log = '';
  const launch = async (): Promise<void> => {
    const c = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = c;
    for (const s of [c.stdout, c.stderr])
      s?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
    await waitFor(
      `redis-server on ${port}`,
      async () => {
        if (c.exitCode !== null) throw new Error(`redis-server exited: ${log}`);
        return ping(port);
      },
      Boolean,
      60_000,
    );
  };
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
    });
  };
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    restart: launch,
    stop: () => kill('SIGTERM'),
  };
}

/** PING answered with PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(2000, () => s.destroy());
    s.on('error', () => resolve(false));
    s.on('close', () => resolve(false));
    s.on('data', (d) => {
      resolve(d.toString().startsWith('+PONG'));
      s.destroy();
    });
    s.write('PING\r\n');
  });
}
