import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../test/gateway.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded-postgres.ts';

/** A logger whose lines the test can read. */
function capturingLogger(): { logger: pino.Logger; lines: () => { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n'))
        if (l.trim()) lines.push(JSON.parse(l) as { level: number; msg: string });
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines: () => lines };
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function query(url: string, sql: string): Promise<pg.QueryResult | undefined> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return await c.query(sql);
  } catch {
    return undefined;
  } finally {
    await c.end().catch(() => undefined);
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The server as a technician's `kill -9` or the OOM killer leaves it: postmaster gone at once. */
async function killPostmaster(server: EmbeddedPostgres): Promise<number> {
  const pid = server.pid()!;
  process.kill(pid, 'SIGKILL');
  await waitFor('the postmaster to be gone', () => !alive(pid));
  return pid;
}

/** A line PostgreSQL cannot parse: every start from now on fails until it is removed. */
const BROKEN = "shared_buffers = 'not a size'\n";

describe('embedded PostgreSQL supervisor', () => {
  const dirs: string[] = [];
  const servers: EmbeddedPostgres[] = [];
  const settings = { fsync: 'off', shared_buffers: '16MB', max_connections: '20' };
  async function start(
    restart: Parameters<typeof startEmbeddedPostgres>[0]['restart'],
    logger: pino.Logger,
  ) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'thamani-sup-'));
    dirs.push(dir);
    const port = await freePort();
    const server = await startEmbeddedPostgres({
      dataDir: dir,
      port,
      logger,
      settings,
      ...(restart ? { restart } : {}),
    });
    servers.push(server);
    return { server, dir, port };
  }
  afterAll(async () => {
    for (const s of servers) await s.stop().catch(() => undefined);
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('restarts a server that was killed, on the same port with the same data, and logs it', async () => {
    const { logger, lines } = capturingLogger();
    const { server, dir } = await start({ initialDelayMs: 200 }, logger);
    await query(
      server.url,
      `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before the crash')`,
    );
    const before = await killPostmaster(server);

    const after = await waitFor('a restarted server', () => {
      const pid = server.pid();
      return pid !== undefined && pid !== before ? pid : undefined;
    });
    const rows = await waitFor('a query on the restarted server', () =>
      query(server.url, 'SELECT v FROM kept'),
    );
    expect(rows.rows).toEqual([{ v: 'before the crash' }]);
    expect(server.restarts()).toBe(1);
    expect(alive(after)).toBe(true);
    expect(
      Number((await readFile(path.join(dir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]),
    ).toBe(after);
    const msgs = lines().map((l) => l.msg);
    expect(msgs).toContain('embedded PostgreSQL exited unexpectedly: restarting it');
    expect(msgs).toContain('embedded PostgreSQL restarted');
  }, 120_000);

  it('keeps trying with backoff while the server cannot start, and resumes once it can', async () => {
    const { logger, lines } = capturingLogger();
    const { server, dir } = await start(
      { initialDelayMs: 100, maxDelayMs: 400, maxAttempts: 1000 },
      logger,
    );
    const conf = path.join(dir, 'pg', 'postgresql.conf');
    const original = await readFile(conf, 'utf8');
    await appendFile(conf, BROKEN);
    await killPostmaster(server);
    await waitFor(
      'two failed restarts',
      () =>
        lines().filter((l) => l.msg === 'embedded PostgreSQL restart failed').length >= 2 ||
        undefined,
    );
    expect(server.pid()).toBeUndefined();
    await writeFile(conf, original);
    await waitFor(
      'the supervisor to report the server back',
      () => server.restarts() === 1 || undefined,
    );
    expect(await query(server.url, 'SELECT 1')).toBeDefined();
  }, 120_000);

  it('gives up after the bounded number of attempts, and says so', async () => {
    const { logger, lines } = capturingLogger();
    const { server, dir } = await start(
      { initialDelayMs: 100, maxDelayMs: 200, maxAttempts: 3 },
      logger,
    );
    await appendFile(path.join(dir, 'pg', 'postgresql.conf'), BROKEN);
    await killPostmaster(server);
    const end = await server.ended;
    expect(end).toMatchObject({ reason: 'gave_up', attempts: 3 });
    expect(lines().filter((l) => l.msg === 'embedded PostgreSQL restart failed')).toHaveLength(3);
    expect(lines().find((l) => l.level === 60)?.msg).toMatch(/giving up/);
    expect(server.restarts()).toBe(0);
  }, 120_000);

  it('never restarts a server it was asked to stop', async () => {
    const { logger, lines } = capturingLogger();
    const { server, dir } = await start({ initialDelayMs: 50 }, logger);
    const pid = server.pid()!;
    await server.stop();
    expect(await server.ended).toEqual({ reason: 'stopped' });
    expect(alive(pid)).toBe(false);
    // Longer than several restart delays: nobody starts it again.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await query(server.url, 'SELECT 1')).toBeUndefined();
    expect(server.pid()).toBeUndefined();
    expect(lines().map((l) => l.msg)).not.toContain('restarting embedded PostgreSQL');
    await expect(readFile(path.join(dir, 'pg.owner'), 'utf8')).rejects.toThrow();
  }, 120_000);
});
