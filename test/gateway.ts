import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { httpsRequest } from '../simulators/https-json.ts';
import { cliRunner } from './cli-runner.ts';
import { freePort } from './ports.ts';
import { withDatabase } from './global-setup.ts';

export { freePort } from './ports.ts';

export interface Gateway {
  env: NodeJS.ProcessEnv;
  dataDir: string;
  apiUrl: string;
  mqttUrl: string;
  /** The root CA certificate (PEM) that clients trust. */
  ca: string;
  /** The gateway's exit code or signal once it has exited; undefined while it runs. */
  exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Its log (stdout and stderr), the last 64 kB. */
  log(): string;
  /** Calls `listener` with every chunk of its log (stdout) from now on. */
  onLog(listener: (chunk: string) => void): void;
  /** Runs `thamani <args>` against this gateway; resolves with its stdout. */
  cli(args: string[]): Promise<string>;
  stop(): void;
  /** Sends `signal` (SIGKILL: a node that dies) and resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Passwords of the API's and ingest's database roles for every gateway a test starts. */
export const testRolePasswords = {
  APP_DB_PASSWORD: 'api role password for tests',
  INGEST_DB_PASSWORD: 'ingest role password for tests',
} as const;

/**
 * The real `thamani start` in a child process on a test database: embedded CA, broker, ingest,
 * API, dashboards, exactly as an operator runs it. Resolves once /readyz answers 200.
 * With `database: 'embedded'` it runs its own embedded PostgreSQL (as `npm start` does) on a
 * free port, in its data directory.
 */
export async function startGateway(o: {
  database: string;
  env?: NodeJS.ProcessEnv;
  /** More arguments for `thamani start` (e.g. `--role api`). */
  args?: string[];
  readyTimeoutMs?: number;
  dataDir?: string;
}): Promise<Gateway> {
  const dataDir = o.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'thamani-gw-'));
  // A port found free can be taken by another process before the child binds it (another test
  // file, a second copy of the suite beside this one): the child then exits with EADDRINUSE and
  // starts again on fresh ports. Any other failure is the test's to report.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(o, dataDir);
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt >= 5) throw err;
    }
  }
}

class PortTaken extends Error {}

async function startOnce(
  o: { database: string; env?: NodeJS.ProcessEnv; args?: string[]; readyTimeoutMs?: number },
  dataDir: string,
): Promise<Gateway> {
  const [httpsPort, httpPort, mqttPort, devicePort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const { DATABASE_URL: _ignored, ...inherited } = process.env;
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    ...(o.database === 'embedded'
      ? { EMBEDDED_PG_PORT: String(await freePort()) }
      : { DATABASE_URL: withDatabase(inject('adminUrl'), o.database) }),
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
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  // The log (stdout) is read all along: a pipe nobody reads would stall the gateway once full.
  const child: ChildProcess = spawn(
    process.execPath,
    ['bin/thamani.js', 'start', ...(o.args ?? [])],
    {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (c: string) => (stderr = (stderr + c).slice(-65_536)));
  }
  child.on('exit', (code, signal) => (exit = { code, signal }));
  const apiUrl = `https://localhost:${httpsPort}`;
  // Start-up (tsx, migrations, CA, embedded services) takes seconds when idle and minutes on a
  // loaded machine: the deadline only catches a gateway that never comes up (it exiting is seen at once).
  const deadline = Date.now() + (o.readyTimeoutMs ?? 240_000);
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
      if (child.exitCode !== null && /EADDRINUSE/.test(stderr))
        throw new PortTaken(stderr.slice(-4000));
      throw new Error(
        `gateway did not become ready (exit ${child.exitCode}): ${stderr.slice(-4000)}`,
      );
    }
  }
  // In-process: the gateway's process boundary is what these tests exercise, not the CLI's.
  const thamani = cliRunner(() =>
    Object.fromEntries(
      Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined),
    ),
  );
  const cli = async (args: string[]): Promise<string> => {
    const r = await thamani(...args);
    if (r.code !== 0) throw new Error(`thamani ${args.join(' ')} (exit ${r.code}): ${r.stderr}`);
    return r.stdout;
  };
  return {
    env,
    dataDir,
    apiUrl,
    mqttUrl: `mqtts://localhost:${mqttPort}`,
    ca,
    cli,
    exit: () => exit,
    log: () => stderr,
    onLog: (listener) => void child.stdout?.on('data', listener),
    stop: () => void child.kill('SIGTERM'),
    kill: (signal = 'SIGKILL') =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
      }),
  };
}

/**
 * Gateway nodes of one cluster: one database, one data directory (the CA and signing keys every
 * node shares, as a deployment shares its secrets volume) and whatever `env` adds (REDIS_URL).
 * Started one after the other: the first creates the CA and runs the migrations, the others
 * load them.
 */
export async function startNodes(
  count: number,
  o: { database: string; env?: NodeJS.ProcessEnv; dataDir?: string },
): Promise<Gateway[]> {
  const dataDir = o.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'thamani-cluster-'));
  const nodes: Gateway[] = [];
  for (let i = 0; i < count; i++)
    nodes.push(await startGateway({ database: o.database, env: o.env, dataDir }));
  return nodes;
}
