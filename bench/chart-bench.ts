/**
 * Dashboard chart latency at the API: a year of 1-minute data for 200 digesters (105 M rows),
 * then the chart requests a kitchen manager's page makes (all seven digester metrics), over
 * HTTPS with a session cookie, through authentication, row-level security and the rollups —
 * side by side with the same rollup query run directly as the owner (the database's share).
 *
 *   npm run bench -- chart [--devices 200 --days 365 --requests 40 --fresh] [--database thamani_chart_bench]
 *
 * The dataset is built once into data/thamani-chart-bench (embedded PostgreSQL) or into the
 * database `--database` of BENCH_DATABASE_URL's server (e.g. a TimescaleDB server), and reused
 * while its shape matches.
 */
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import os from 'node:os';
import type pg from 'pg';
import { numberArg, stringArg } from './args.ts';
import { openBenchDatabase } from './bench-db.ts';
import { pino } from 'pino';
import { createMetricsRegistry } from '../api/metrics.ts';
import { createOperatorApi } from '../api/operator-api.ts';
import { selfSignedCertificate } from '../api/dev-cert.ts';
import { openAsLoginRole } from '../app/db-roles.ts';
import { createDashboardQueries, ranges, type Range } from '../dashboards/dashboard-repo.ts';
import { dashboardRoutes } from '../dashboards/dashboard-routes.ts';
import { createLiveHub } from '../dashboards/live-hub.ts';
import { createDatabase } from '../db/client.ts';
import { runMigrations } from '../db/migrate.ts';
import { rollup, timeseriesInfo } from '../db/timeseries.ts';
import { digesterMetrics } from '../dashboards/pages.ts';
import { ephemeralAuditSigner } from '../audit/index.ts';

const devices = numberArg('devices', 200);
const days = numberArg('days', 365);
const requests = numberArg('requests', 40);
const fresh = process.argv.includes('--fresh');
// 'error': the embedded server's shutdown ends idle connections, which pg reports as warnings.
const logger = pino({ level: 'error' });
const SYSTEM = {
  actorId: 'bench',
  actorRole: 'system',
  ip: null,
  userAgent: null,
  requestId: null,
};

/** A year of minute readings per digester, generated in the server (one statement per device-month). */
async function populate(pool: pg.Pool, mode: string): Promise<void> {
  await pool.query(
    `CREATE TABLE IF NOT EXISTS bench_meta (devices int, days int, done_at timestamptz)`,
  );
  const meta = await pool.query<{ devices: number; days: number }>(
    `SELECT devices, days FROM bench_meta WHERE done_at IS NOT NULL`,
  );
  if (meta.rows[0]?.devices === devices && meta.rows[0]?.days === days) {
    process.stdout.write(
      `dataset: reusing ${devices} digesters × ${days} days of 1-minute readings\n`,
    );
    return;
  }
  if (meta.rows.length > 0 || (await pool.query(`SELECT 1 FROM readings LIMIT 1`)).rowCount)
    throw new Error('the bench database holds another dataset: run with --fresh');
  if (mode === 'partitioned')
    await pool.query(
      `SELECT readings_ensure_partitions(interval '28 days', make_interval(days => $1))`,
      [days + 7],
    );
  const site = (
    await pool.query<{ id: string }>(
      `INSERT INTO sites (name) VALUES ('Bench County Schools') RETURNING id`,
    )
  ).rows[0]!.id;
  const end = new Date(Math.floor(Date.now() / 60_000) * 60_000);
  const start = new Date(end.getTime() - days * 86_400_000);
  const jobs: { id: string; unit: string; from: Date; to: Date }[] = [];
  for (let i = 0; i < devices; i++) {
    const unit = (
      await pool.query<{ id: string }>(
        `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', $2) RETURNING id`,
        [site, `Digester ${i + 1}`],
      )
    ).rows[0]!.id;
    const id = `bd-bench-${String(i + 1).padStart(3, '0')}`;
    await pool.query(
      `INSERT INTO devices (id, unit_id, kind, status) VALUES ($1, $2, 'biodigester', 'active')`,
      [id, unit],
    );
    for (let t = start.getTime(); t < end.getTime(); t += 30 * 86_400_000)
      jobs.push({
        id,
        unit,
        from: new Date(t),
        to: new Date(Math.min(t + 30 * 86_400_000, end.getTime())),
      });
  }
  const started = Date.now();
  let done = 0;
  // Two sessions: this machine has two cores.
  const worker = async (): Promise<void> => {
    const client = await pool.connect();
    try {
      await client.query(`SET synchronous_commit = off`);
      for (let job = jobs.shift(); job; job = jobs.shift()) {
        await client.query(
          `INSERT INTO readings (ts, device_id, unit_id, seq, temperature_c, ph, biogas_pressure_kpa, methane_pct, gas_flow_lpm, slurry_level_pct, h2s_ppm, battery_v, rssi_dbm)
           SELECT t, $1, $2, (extract(epoch FROM t) / 60)::bigint,
                  35 + 1.5 * sin(extract(epoch FROM t) / 86400 * 2 * pi()), 7.1 + 0.1 * sin(extract(epoch FROM t) / 604800 * 2 * pi()),
                  4 + 2 * sin(extract(epoch FROM t) / 43200 * 2 * pi()), 60 + random(), 3 + 20 * (extract(hour FROM t) BETWEEN 6 AND 9)::int,
                  75, 300 + 20 * random(), 3.9, -70 - 5 * random()
             FROM generate_series($3::timestamptz, $4::timestamptz - interval '1 minute', interval '1 minute') t`,
          [job.id, job.unit, job.from, job.to],
        );
        done++;
        if (done % 100 === 0)
          process.stdout.write(
            `  loaded ${done} device-months (${Math.round((Date.now() - started) / 1000)} s)\n`,
          );
      }
    } finally {
      client.release();
    }
  };
  process.stdout.write(
    `dataset: generating ${devices} digesters × ${days} days of 1-minute readings (${((devices * days * 1440) / 1e6).toFixed(0)} M rows)…\n`,
  );
  await Promise.all([worker(), worker()]);
  if (mode === 'hypertable') {
    process.stdout.write('  refreshing continuous aggregates…\n');
    await pool.query(`CALL refresh_continuous_aggregate('readings_hourly', NULL, NULL)`);
    await pool.query(`CALL refresh_continuous_aggregate('readings_daily', NULL, NULL)`);
  }
  await pool.query('VACUUM ANALYZE');
  await pool.query(`INSERT INTO bench_meta VALUES ($1, $2, now())`, [devices, days]);
  process.stdout.write(`  loaded in ${Math.round((Date.now() - started) / 1000)} s\n`);
}

function stats(ms: number[]): { p50: number; p95: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { p50: at(0.5), p95: at(0.95), max: s[s.length - 1]! };
}

async function main(): Promise<void> {
  const database = await openBenchDatabase({
    name: stringArg('database', 'thamani_chart_bench'),
    fresh,
    logger,
  });
  try {
    await runMigrations(database.url, logger);
    const owner = createDatabase({ url: database.url, poolMax: 4, logger });
    const { mode } = await timeseriesInfo(owner.pool);
    await populate(owner.pool, mode);

    const apiDb = await openAsLoginRole(
      { client: owner.pool, url: database.url },
      {
        kind: 'api',
        loginRole: 'thamani_api',
        password: randomBytes(18).toString('base64url'),
        poolMax: 10,
        logger,
      },
    );
    const queries = createDashboardQueries({ mode });
    const tls = selfSignedCertificate('localhost', 1);
    const api = await createOperatorApi({
      logger,
      db: apiDb.db,
      ownerDb: owner.db,
      metrics: createMetricsRegistry({ defaultMetrics: false }),
      probes: [],
      cookieSecret: randomBytes(32).toString('base64url'),
      publicBaseUrl: 'https://localhost',
      sessionIdleMs: 3_600_000,
      sessionMaxMs: 3_600_000,
      https: tls,
      auditSigner: ephemeralAuditSigner(),
      routes: ({ audit, db, authenticator }) => [
        { plugin: dashboardRoutes({ db, audit, authenticator, queries, hub: createLiveHub() }) },
      ],
    });
    await api.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (api.app.server.address() as { port: number }).port;

    // The kitchen manager of one digester, signed in with a session like the browser.
    const unitId = (
      await owner.pool.query<{ id: string }>(
        `SELECT id FROM units WHERE name = 'Digester 100' OR name = 'Digester 1' ORDER BY name DESC LIMIT 1`,
      )
    ).rows[0]!.id;
    const username = `km-${randomBytes(3).toString('hex')}`;
    const { user, setupLink } = await api.users.create(
      { username, displayName: 'Bench Manager', role: 'kitchen_manager' },
      SYSTEM,
    );
    await api.users.completeLink(
      new URL(setupLink).searchParams.get('token')!,
      'bench password 123',
      SYSTEM,
    );
    await api.users.assignUnits(user.id, [unitId], SYSTEM);

    const agent = new https.Agent({ keepAlive: true, ca: tls.cert, maxSockets: 1 });
    const call = (method: string, p: string, headers: Record<string, string>, body?: string) =>
      new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
        (resolve, reject) => {
          const req = https.request(
            {
              host: '127.0.0.1',
              port,
              path: p,
              method,
              agent,
              servername: 'localhost',
              headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) },
            },
            (res) => {
              let text = '';
              res.on('data', (c: Buffer) => (text += c.toString()));
              res.on('end', () =>
                resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
              );
            },
          );
          req.on('error', reject);
          req.end(body);
        },
      );
    const login = await call(
      'POST',
      '/api/v1/auth/login',
      {},
      JSON.stringify({ username, password: 'bench password 123' }),
    );
    const cookie = String([login.headers['set-cookie']].flat()[0]).split(';')[0]!;

    const metrics = digesterMetrics.join(',');
    const rows: string[] = [];
    const ratios: string[] = [];
    for (const range of ['24h', '7d', '30d', '1y'] as Range[]) {
      const url = `/api/v1/units/${unitId}/series?range=${range}&metrics=${metrics}`;
      const apiMs: number[] = [];
      let points = 0;
      for (let i = 0; i < requests + 5; i++) {
        const t0 = performance.now();
        const res = await call('GET', url, { cookie });
        if (res.status !== 200) throw new Error(`${url}: ${res.status} ${res.body.slice(0, 200)}`);
        if (i >= 5) apiMs.push(performance.now() - t0);
        points = (JSON.parse(res.body) as { t: number[] }).t.length;
      }
      // Baseline: the same rollup, straight to the database as the owner (no HTTP, auth or RLS).
      const dbMs: number[] = [];
      const { ms, bucket } = ranges[range];
      for (let i = 0; i < requests + 5; i++) {
        const now = new Date();
        const t0 = performance.now();
        await rollup(
          owner.pool,
          { unitId, from: new Date(now.getTime() - ms), to: now, bucket, metrics: digesterMetrics },
          { mode },
        );
        if (i >= 5) dbMs.push(performance.now() - t0);
      }
      const a = stats(apiMs);
      const d = stats(dbMs);
      rows.push(
        `| ${range} | ${points} | ${a.p50.toFixed(1)} | ${a.p95.toFixed(1)} | ${a.max.toFixed(1)} | ${d.p50.toFixed(1)} | ${(a.p50 / d.p50).toFixed(2)} |`,
      );
      ratios.push(
        `${range}: API p50 ${a.p50.toFixed(1)} ms = ${(a.p50 / d.p50).toFixed(2)} × the bare query`,
      );
    }
    const count = (await owner.pool.query<{ n: string }>(`SELECT count(*) AS n FROM devices`))
      .rows[0]!.n;
    process.stdout.write(
      `\nChart API (kitchen manager session, HTTPS keep-alive, ${digesterMetrics.length} metrics, ${requests} requests each) on ${os.cpus().length} cores, ${mode} path, ${count} digesters × ${days} days of 1-minute data:\n\n` +
        `| range | points | API p50 ms | API p95 ms | API max ms | bare query p50 ms | API / bare |\n|---|--:|--:|--:|--:|--:|--:|\n${rows.join('\n')}\n\n${ratios.join('\n')}\n`,
    );
    agent.destroy();
    await api.app.close();
    await apiDb.close();
    await owner.close();
  } finally {
    await database.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
