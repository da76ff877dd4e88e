import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { httpsRequest } from '../simulators/https-json.ts';
import { withDatabase } from './global-setup.ts';

/** A TCP port nobody listens on right now (for a child process that needs fixed ports). */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Gateway {
  env: NodeJS.ProcessEnv;
  dataDir: string;
  apiUrl: string;
  mqttUrl: string;
  /** The root CA certificate (PEM) that clients trust. */
  ca: string;
  /** Runs `thamani <args>` against this gateway; resolves with its stdout. */
  cli(args: string[]): Promise<string>;
  /** The process's exit code, null while it runs. */
  exitCode(): number | null;
  /** The last 4,000 characters it wrote to stderr. */
  stderr(): string;
  stop(): void;
}

/** Passwords of the API's and ingest's database roles for every gateway a test starts. */
export const testRolePasswords = { APP_DB_PASSWORD: 'api role password for tests', INGEST_DB_PASSWORD: 'ingest role password for tests' } as const;

/**
 * The real `thamani start` in a child process on a test database: embedded CA, broker, ingest,
 * API, dashboards, exactly as an operator runs it. Resolves once /readyz answers 200.
 */
export async function startGateway(o: { database: string; env?: NodeJS.ProcessEnv; readyTimeoutMs?: number; dataDir?: string }): Promise<Gateway> {
  const dataDir = o.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'thamani-gw-'));
  const [httpsPort, httpPort, mqttPort, devicePort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: withDatabase(inject('adminUrl'), o.database),
    THAMANI_DATA_DIR: dataDir,
    MQTT_PORT: String(mqttPort),
    HTTPS_PORT: String(httpsPort),
    HTTP_REDIRECT_PORT: String(httpPort),
    DEVICE_HTTPS_PORT: String(devicePort),
    MQTT_HOST: '127.0.0.1',
    HTTPS_HOST: '127.0.0.1',
    PKI_PASSPHRASE: 'gateway test passphrase',
    // The LOGIN roles are cluster-wide: gateways of parallel test files must not reset each
    // other's passwords (each would generate its own under its data directory).
    ...testRolePasswords,
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
    ...o.env,
  };
  let stderr = '';
  const child: ChildProcess = spawn(process.execPath, ['bin/thamani.js', 'start'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const apiUrl = `https://localhost:${httpsPort}`;
  const deadline = Date.now() + (o.readyTimeoutMs ?? 40_000);
  let ca = '';
  for (;;) {
    await new Promise((r) => setTimeout(r, 300));
    try {
      ca = readFileSync(path.join(dataDir, 'pki', 'root.crt'), 'utf8');
      if ((await httpsRequest(`${apiUrl}/readyz`, { ca })).status === 200) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gateway did not become ready (exit ${child.exitCode}): ${stderr}`);
    }
  }
  const cli = (args: string[]) =>
    new Promise<string>((resolve, reject) => {
      const c = spawn(process.execPath, ['bin/thamani.js', ...args], { env });
      let out = '';
      let err = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.stderr.on('data', (d: Buffer) => (err += d.toString()));
      c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`thamani ${args.join(' ')}: ${err}`))));
    });
  return { env, dataDir, apiUrl, mqttUrl: `mqtts://localhost:${mqttPort}`, ca, cli, exitCode: () => child.exitCode ?? (child.signalCode ? -1 : null), stderr: () => stderr, stop: () => void child.kill('SIGTERM') };
}
