/**
 * Measures the two candidate layouts for `readings` (ADR 0001): narrow (one row per metric value)
 * and wide (one table per unit kind, one column per metric), on whichever time-series path the
 * database offers (TimescaleDB hypertable or native range partitions).
 *
 *   node --import tsx bench/readings-layout.ts [postgres-url]
 *
 * Without a URL it starts the embedded PostgreSQL in a temporary directory.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pino } from 'pino';
import { startEmbeddedPostgres } from '../db/embedded-postgres.ts';

const METRICS = [
  'temperature_c',
  'ph',
  'biogas_pressure_kpa',
  'methane_pct',
  'gas_flow_lpm',
  'slurry_level_pct',
  'h2s_ppm',
  'battery_v',
  'rssi_dbm',
];
const DEVICES = 20;
const DAYS = 30;
const STEP_MIN = 5;
const BATCH = 2000; // messages per INSERT statement
const START = Date.UTC(2026, 9, 1);

interface Msg {
  device: string;
  ts: Date;
  seq: number;
  values: number[];
}

function* messages(): Generator<Msg> {
  const steps = (DAYS * 24 * 60) / STEP_MIN;
  for (let s = 0; s < steps; s++) {
    for (let d = 0; d < DEVICES; d++) {
      const ts = new Date(START + s * STEP_MIN * 60_000);
      yield {
        device: `bench-dev-${d}`,
        ts,
        seq: s,
        values: METRICS.map((_, i) => 20 + i + Math.sin(s / 50 + d) * 3),
      };
    }
  }
}
const totalMessages = ((DAYS * 24 * 60) / STEP_MIN) * DEVICES;
const UNIT = '00000000-0000-0000-0000-000000000001';

async function setupPath(c: pg.Client, table: string, timescale: boolean): Promise<void> {
  if (timescale) {
    await c.query(
      `SELECT create_hypertable('${table}', 'ts', chunk_time_interval => interval '7 days')`,
    );
  }
}

async function createTables(
  c: pg.Client,
  layout: 'narrow' | 'wide',
  timescale: boolean,
): Promise<string> {
  await c.query('DROP TABLE IF EXISTS bench_narrow CASCADE');
  await c.query('DROP TABLE IF EXISTS bench_wide CASCADE');
  const partition = timescale ? '' : ' PARTITION BY RANGE (ts)';
  if (layout === 'narrow') {
    await c.query(
      `CREATE TABLE bench_narrow (ts timestamptz NOT NULL, device_id text NOT NULL, unit_id uuid NOT NULL, metric text NOT NULL, value double precision NOT NULL, seq bigint NOT NULL, PRIMARY KEY (device_id, metric, ts))${partition}`,
    );
  } else {
    const cols = METRICS.map((m) => `${m} double precision`).join(', ');
    await c.query(
      `CREATE TABLE bench_wide (ts timestamptz NOT NULL, device_id text NOT NULL, unit_id uuid NOT NULL, seq bigint NOT NULL, ${cols}, PRIMARY KEY (device_id, ts))${partition}`,
    );
  }
  const table = `bench_${layout}`;
  if (!timescale) {
    for (let w = -1; w < DAYS / 7 + 2; w++) {
      const from = new Date(START + w * 7 * 86_400_000).toISOString();
      const to = new Date(START + (w + 1) * 7 * 86_400_000).toISOString();
      await c.query(
        `CREATE TABLE ${table}_w${w + 1} PARTITION OF ${table} FOR VALUES FROM ('${from}') TO ('${to}')`,
      );
    }
  }
  await setupPath(c, table, timescale);
  return table;
}

function copyRows(layout: 'narrow' | 'wide'): Readable {
  return Readable.from(
    (function* () {
      let buf = '';
      for (const m of messages()) {
        const ts = m.ts.toISOString();
        if (layout === 'narrow') {
          for (let i = 0; i < METRICS.length; i++)
            buf += `${ts}\t${m.device}\t${UNIT}\t${METRICS[i]}\t${m.values[i]}\t${m.seq}\n`;
        } else {
          buf += `${ts}\t${m.device}\t${UNIT}\t${m.seq}\t${m.values.join('\t')}\n`;
        }
        if (buf.length > 256 * 1024) {
          yield buf;
          buf = '';
        }
      }
      if (buf) yield buf;
    })(),
  );
}

async function loadCopy(c: pg.Client, layout: 'narrow' | 'wide', table: string): Promise<void> {
  const stream = c.query(copyFrom(`COPY ${table} FROM STDIN`));
  await pipeline(copyRows(layout), stream);
}

async function loadInsert(c: pg.Client, layout: 'narrow' | 'wide', table: string): Promise<void> {
  let batch: Msg[] = [];
  const flush = async (): Promise<void> => {
    if (layout === 'narrow') {
      const ts: string[] = [],
        dev: string[] = [],
        met: string[] = [],
        val: number[] = [],
        seq: number[] = [];
      for (const m of batch)
        for (let i = 0; i < METRICS.length; i++) {
          ts.push(m.ts.toISOString());
          dev.push(m.device);
          met.push(METRICS[i]!);
          val.push(m.values[i]!);
          seq.push(m.seq);
        }
      await c.query(
        `INSERT INTO ${table} (ts, device_id, unit_id, metric, value, seq) SELECT t, d, '${UNIT}', m, v, s FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::float8[], $5::int8[]) AS u(t, d, m, v, s) ON CONFLICT DO NOTHING`,
        [ts, dev, met, val, seq],
      );
    } else {
      const cols = METRICS.map((_, i) => `$${i + 4}::float8[]`).join(', ');
      const params: unknown[] = [
        batch.map((m) => m.ts.toISOString()),
        batch.map((m) => m.device),
        batch.map((m) => m.seq),
      ];
      METRICS.forEach((_, i) => params.push(batch.map((m) => m.values[i])));
      await c.query(
        `INSERT INTO ${table} (ts, device_id, unit_id, seq, ${METRICS.join(', ')}) SELECT u.t, u.d, '${UNIT}', u.s, ${METRICS.map((_, i) => `u.c${i}`).join(', ')} FROM unnest($1::timestamptz[], $2::text[], $3::int8[], ${cols}) AS u(t, d, s, ${METRICS.map((_, i) => `c${i}`).join(', ')}) ON CONFLICT DO NOTHING`,
        params,
      );
    }
    batch = [];
  };
  await c.query('BEGIN');
  for (const m of messages()) {
    batch.push(m);
    if (batch.length >= BATCH) await flush();
  }
  if (batch.length) await flush();
  await c.query('COMMIT');
}

async function median(n: number, fn: () => Promise<void>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(n / 2)]!;
}

async function queries(
  c: pg.Client,
  layout: 'narrow' | 'wide',
  table: string,
): Promise<{ rollupMs: number; latestMs: number }> {
  const from = new Date(START).toISOString();
  const to = new Date(START + DAYS * 86_400_000).toISOString();
  const rollup =
    layout === 'narrow'
      ? `SELECT date_bin('1 hour', ts, TIMESTAMPTZ '2000-01-03') AS b, min(value), max(value), avg(value), count(*) FROM ${table} WHERE device_id = 'bench-dev-3' AND metric = 'temperature_c' AND ts >= $1 AND ts < $2 GROUP BY b ORDER BY b`
      : `SELECT date_bin('1 hour', ts, TIMESTAMPTZ '2000-01-03') AS b, min(temperature_c), max(temperature_c), avg(temperature_c), count(temperature_c) FROM ${table} WHERE device_id = 'bench-dev-3' AND ts >= $1 AND ts < $2 GROUP BY b ORDER BY b`;
  const latest =
    layout === 'narrow'
      ? `SELECT DISTINCT ON (metric) metric, ts, value FROM ${table} WHERE device_id = 'bench-dev-3' AND ts > $1::timestamptz - interval '1 day' ORDER BY metric, ts DESC`
      : `SELECT * FROM ${table} WHERE device_id = 'bench-dev-3' AND ts > $1::timestamptz - interval '1 day' ORDER BY ts DESC LIMIT 1`;
  await c.query(rollup, [from, to]);
  return {
    rollupMs: await median(7, async () => {
      await c.query(rollup, [from, to]);
    }),
    latestMs: await median(7, async () => {
      await c.query(latest, [to]);
    }),
  };
}

async function main(): Promise<void> {
  let url = process.argv[2];
  let stop = (): Promise<void> => Promise.resolve();
  if (!url) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'thamani-bench-'));
    const pgServer = await startEmbeddedPostgres({
      dataDir: dir,
      port: 54400,
      logger: pino({ level: 'warn' }),
    });
    url = pgServer.url;
    stop = async () => {
      await pgServer.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await run(c);
  } finally {
    await c.end();
    await stop();
  }
}

async function run(c: pg.Client): Promise<void> {
  const ts = await c.query(
    `SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'timescaledb'`,
  );
  const timescale =
    ts.rows[0].n > 0 &&
    /timescaledb/.test(
      (await c.query('SHOW shared_preload_libraries')).rows[0].shared_preload_libraries,
    );
  if (timescale) await c.query('CREATE EXTENSION IF NOT EXISTS timescaledb');
  const version = (await c.query('SHOW server_version')).rows[0].server_version;
  console.log(
    `PostgreSQL ${version}, path: ${timescale ? 'TimescaleDB hypertable' : 'native range partitions'}; ${totalMessages} messages × ${METRICS.length} metrics (${DEVICES} devices, ${DAYS} days every ${STEP_MIN} min)`,
  );
  console.log(
    'layout  method  seconds  messages/s  values/s  table MB  30d hourly rollup ms  latest ms',
  );
  for (const layout of ['narrow', 'wide'] as const) {
    for (const method of ['copy', 'insert'] as const) {
      const table = await createTables(c, layout, timescale);
      const t0 = performance.now();
      if (method === 'copy') await loadCopy(c, layout, table);
      else await loadInsert(c, layout, table);
      const secs = (performance.now() - t0) / 1000;
      await c.query(`VACUUM ANALYZE ${table}`);
      const size = timescale
        ? (await c.query(`SELECT hypertable_size('${table}') AS b`)).rows[0].b
        : (
            await c.query(
              `SELECT sum(pg_total_relation_size(inhrelid)) AS b FROM pg_inherits WHERE inhparent = '${table}'::regclass`,
            )
          ).rows[0].b;
      const q = await queries(c, layout, table);
      console.log(
        `${layout.padEnd(7)} ${method.padEnd(7)} ${secs.toFixed(1).padStart(7)}  ${Math.round(
          totalMessages / secs,
        )
          .toString()
          .padStart(10)}  ${Math.round((totalMessages * METRICS.length) / secs)
          .toString()
          .padStart(
            8,
          )}  ${(Number(size) / 1e6).toFixed(0).padStart(8)}  ${q.rollupMs.toFixed(1).padStart(20)}  ${q.latestMs.toFixed(2).padStart(9)}`,
      );
    }
  }
  await c.query('DROP TABLE IF EXISTS bench_narrow CASCADE');
  await c.query('DROP TABLE IF EXISTS bench_wide CASCADE');
}

await main();
