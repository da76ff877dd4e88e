/**
 * `npm run bench -- ingest`: end-to-end acknowledged readings per second over mTLS with QoS 1, next to
 * the two ceilings: stock Aedes storing nothing (the framework) and a raw COPY of the same rows
 * (the database); and next to the commit floor, stock Aedes with one hook that holds each PUBACK
 * until one fixed row per message is group-committed (what PUBACK-after-commit costs on this
 * machine before any of our own work). Everything runs on this machine: an embedded PostgreSQL
 * in a temporary directory (fsync on, as in production) or, with BENCH_DATABASE_URL, a fresh
 * database `--database` on that server (e.g. TimescaleDB), the gateway in this process, the load
 * generator in a child process.
 *
 *   npm run bench -- ingest [--seconds 10 --devices 20 --window 100 --window-batch 10]
 *                           [--only stock,floor,single,batch,samets,copy] [--same-ts 4]
 *                           [--profile DIR] [--repeat N] [--database thamani_ingest_bench]
 *
 * `--repeat N` runs each load N times, the loads alternating, and reports the median run (the
 * machine drifts by ±10 % and more between runs). `--only` runs some of the loads (the ratios
 * need their pairs); `--profile DIR` writes a V8 CPU profile of this process (the gateway) for
 * each run, for Chrome DevTools or `node bench/profile-summary.ts FILE`. `samets` is the single
 * load from a coarse clock: `--same-ts N` readings per instant (each with its own seq and
 * values), so all but one of each N are TS_CONFLICT, quarantined and acknowledged.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { numberArg, stringArg } from './args.ts';
import { from as copyFrom } from 'pg-copy-streams';
import { pino } from 'pino';
import { createAuditLog, createSecurityEvents, ephemeralAuditSigner } from '../audit/index.ts';
import { createBroker, createPresence } from '../broker/index.ts';
import { INGEST_LOGIN_ROLE } from '../app/database.ts';
import { openAsLoginRole } from '../app/db-roles.ts';
import { createDatabase } from '../db/client.ts';
import { openBenchDatabase } from './bench-db.ts';
import { runMigrations } from '../db/migrate.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { createCopyEncoder, type EncodableRow } from '../ingest/copy-binary.ts';
import { createBatchWriter } from '../ingest/batch-writer.ts';
import { createIngest } from '../ingest/ingest-service.ts';
import { loadConfig } from '../config/config.ts';
import { createPki, loadOrCreateCa } from '../provisioning/index.ts';
import { deviceKeyAndCsr } from '../test/device-keys.ts';
import { startStockAedes } from './stock-aedes.ts';
import { runLoadInChild } from './load-runner.ts';
import type { LoadResult, LoadSpec } from './mqtt-load.ts';

const seconds = numberArg('seconds', 10);
const devicesPerRun = numberArg('devices', 20);
/** Unacknowledged messages per connection: with PUBACK-after-commit, throughput ≈ window × devices / commit latency. */
const windowSingle = numberArg('window', 100);
const windowBatch = numberArg('window-batch', 10);
/** Rounds of each load, alternating stock and pipeline; the table shows the median run. */
const repeat = numberArg('repeat', 1);
const logger = pino({ level: 'warn' });
const runs = new Set(stringArg('only', 'stock,floor,single,batch,samets,copy').split(','));
for (const r of runs)
  if (!['stock', 'floor', 'single', 'batch', 'samets', 'copy'].includes(r))
    throw new Error(`--only: unknown run "${r}" (stock, floor, single, batch, samets, copy)`);
/** Readings per instant in the `samets` load. */
const perInstant = numberArg('same-ts', 4);
const profileDir = stringArg('profile', '');

/**
 * Runs a load and prints the gateway's event-loop delay (how long a ready callback, a commit's
 * answer or a socket read, waits its turn) and its CPU time per acknowledged message (this
 * process, every thread: less at the mercy of the machine's drift than a rate is).
 */
async function withLoopDelay(name: string, body: () => Promise<LoadResult>): Promise<LoadResult> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const cpu = process.cpuUsage();
  let acked = 0;
  try {
    const result = await body();
    acked = result.acked;
    return result;
  } finally {
    h.disable();
    const used = process.cpuUsage(cpu);
    const perMessage =
      acked > 0 ? `, gateway CPU ${((used.user + used.system) / acked).toFixed(1)} µs/msg` : '';
    console.log(
      `${name}: event-loop delay p50 ${(h.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms${perMessage}`,
    );
  }
}

/** Runs `body`, with the V8 profiler on around it when --profile was given. */
async function profiled(name: string, body: () => Promise<LoadResult>): Promise<LoadResult> {
  if (!profileDir) return withLoopDelay(name, body);
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  try {
    return await body();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    await mkdir(profileDir, { recursive: true });
    const file = path.join(profileDir, `${name}.cpuprofile`);
    await writeFile(file, JSON.stringify(profile));
    session.disconnect();
    console.log(`CPU profile of the gateway: ${file}`);
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'thamani-bench-'));
  // A database of its own for every run: BENCH_DATABASE_URL's server, else an embedded one.
  const server = await openBenchDatabase({
    name: stringArg('database', 'thamani_ingest_bench'),
    fresh: true,
    temporary: true,
    logger,
  });
  try {
    await runMigrations(server.url, logger);
    const database = createDatabase({ url: server.url, poolMax: 10, logger });
    const { db, pool } = database;
    // Ingest's writes go through its own role, as `thamani start` does (app/database.ts).
    const ingestDatabase = await openAsLoginRole(
      { client: pool, url: server.url },
      {
        kind: 'ingest',
        loginRole: INGEST_LOGIN_ROLE,
        password: 'bench ingest role password',
        poolMax: 10,
        logger,
        applicationName: 'thamani-ingest',
      },
    );
    const audit = createAuditLog({ db, signer: ephemeralAuditSigner() });
    const ca = await loadOrCreateCa({
      dir: path.join(dir, 'pki'),
      passphrase: 'bench passphrase 1234',
      serverNames: ['localhost', '127.0.0.1'],
      serverCertDays: 30,
      logger,
    });
    const pki = createPki({
      db,
      ca,
      audit,
      config: {
        passphrase: undefined,
        dir,
        deviceCertDays: 30,
        serverCertDays: 30,
        enrolmentTokenHours: 1,
        renewalWindowDays: 1,
        rotationOverlapHours: 1,
      },
      brokerUrl: '',
    });
    const devices = createDeviceService({ db, audit });
    const admin = { actorId: 'bench', actorRole: 'admin' };
    const site = await devices.addSite({ name: 'Bench' }, admin);
    const unit = await devices.addUnit({ site: site.id, kind: 'biodigester', name: 'D' }, admin);
    const fleet = async (prefix: string): Promise<LoadSpec['devices']> => {
      const out: LoadSpec['devices'] = [];
      for (let i = 0; i < devicesPerRun; i++) {
        const id = `bd-${prefix}-${i}`;
        await devices.addDevice({ id, unit: unit.id }, admin);
        await devices.setStatus(id, 'active', admin);
        const keys = deviceKeyAndCsr(id);
        out.push({
          id,
          key: keys.key,
          cert: (await pki.issueFromCsr(id, keys.csr, admin)).certificate,
        });
      }
      return out;
    };
    const tls = {
      key: ca.server.privateKeyPem,
      cert: `${ca.server.certPem.trim()}\n${ca.issuing.certPem}`,
      ca: ca.caPems,
    };
    const startTs = Date.now() - 6.5 * 86_400_000;
    const spec = (
      port: number,
      devs: LoadSpec['devices'],
      readingsPerMessage: number,
      window: number,
      readingsPerInstant = 1,
    ): LoadSpec => ({
      port,
      ca: ca.rootCertPem,
      devices: devs,
      durationMs: seconds * 1000,
      window,
      readingsPerMessage,
      kind: 'biodigester',
      startTs,
      readingsPerInstant,
    });

    const none: LoadResult = { acked: 0, sent: 0, durationMs: 1, errors: [] };
    // What ships: the defaults of config/config.ts (INGEST_*), as `thamani start` uses them.
    const shipped = loadConfig({ THAMANI_DATA_DIR: dir }).ingest;

    // Both brokers up front; with --repeat N the runs alternate (stock, pipeline, stock, …) so
    // that drift of the machine between runs hits both sides, and the medians are reported.
    // 1. Stock Aedes, storing nothing.
    const stock = runs.has('stock') ? await startStockAedes(tls) : undefined;
    const stockDevs = runs.has('stock') || runs.has('floor') ? await fleet('stock') : [];
    // 1b. The commit floor: stock Aedes whose only hook holds each PUBACK until one fixed row per
    // message is committed by ingest's group commit (same writer, same settings), with no
    // identity, policy, parsing or validation: what PUBACK-after-commit costs by itself.
    const floorCommits = { commits: 0, committedRows: 0, commitMsTotal: 0 };
    const floorWriter = runs.has('floor')
      ? createBatchWriter({
          pool: ingestDatabase.pool,
          logger,
          maxRows: shipped.batchMaxRows,
          maxWaitMs: shipped.batchMaxWaitMs,
          onCommit: (c) => {
            floorCommits.commits++;
            floorCommits.committedRows += c.rows;
            floorCommits.commitMsTotal += c.durationMs;
          },
        })
      : undefined;
    let floorSeq = 0;
    const floor = floorWriter
      ? await startStockAedes(tls, {
          authorizePublish(client, _packet, done) {
            floorSeq++;
            const row = {
              deviceId: client?.id ?? '',
              unitId: unit.id,
              seq: floorSeq,
              ts: new Date(startTs + floorSeq),
              values: { temperature_c: 36.6, ph: 7.1, methane_pct: 58.5, battery_v: 3.9 },
              expect: 'new' as const,
            };
            floorWriter.submit([row], [], Date.now() + shipped.commitTimeoutMs, (err) => done(err));
          },
        })
      : undefined;
    // 2. The full pipeline: mTLS identity, topic policy, rate limit, validation, group commit.
    const usePipeline = runs.has('single') || runs.has('batch') || runs.has('samets');
    // The broker first: ingest is built from its publisher and backpressure, then given to listen().
    const broker = usePipeline
      ? await createBroker({
          config: {
            host: '127.0.0.1',
            port: 0,
            maxPacketBytes: 256 * 1024,
            maxConnections: 10_000,
            connectTimeoutMs: 10_000,
            keepaliveMinSeconds: 10,
            keepaliveMaxSeconds: 1200,
            maxClientIdLength: 64,
            ratePerSecond: 1e9,
            rateBurst: 1e9,
            rateMaxWaitMs: 10_000,
            rateFloodCloseMs: 600_000,
            connectsPerWindow: 1e9,
            connectWindowMs: 60_000,
            maxPending: 10_000,
            maxPendingPerAddress: 10_000,
            revalidateIntervalMs: 60_000,
          },
          logger,
          tls,
          identity: pki,
          securityEvents: createSecurityEvents({
            audit,
            logger,
            config: { windowMs: 60_000, maxKeys: 1000 },
          }),
          presence: createPresence({ pool, logger }),
        })
      : undefined;
    const ingest = broker
      ? createIngest({
          pool: ingestDatabase.pool,
          logger,
          config: shipped,
          publisher: broker.publisher,
          backpressure: broker.backpressure,
        })
      : undefined;
    const port =
      broker && ingest
        ? (await broker.listen({ handlers: { telemetry: ingest.handleTelemetry } })).port
        : 0;

    const results = {
      stockSingle: [] as LoadResult[],
      stockBatch: [] as LoadResult[],
      floor: [] as LoadResult[],
      single: [] as LoadResult[],
      batch: [] as LoadResult[],
      samets: [] as LoadResult[],
    };
    for (let round = 1; round <= repeat; round++) {
      const suffix = repeat > 1 ? `-${round}` : '';
      if (stock)
        results.stockSingle.push(
          await profiled(`stock-single${suffix}`, () =>
            runLoadInChild(spec(stock.port, stockDevs, 1, windowSingle)),
          ),
        );
      if (floor)
        results.floor.push(
          await profiled(`floor-single${suffix}`, () =>
            runLoadInChild(spec(floor.port, stockDevs, 1, windowSingle)),
          ),
        );
      if (runs.has('single')) {
        // Fresh devices each round: their seq and ts start over.
        const devs = await fleet(`single${suffix}`);
        results.single.push(
          await profiled(`pipeline-single${suffix}`, () =>
            runLoadInChild(spec(port, devs, 1, windowSingle)),
          ),
        );
      }
      if (runs.has('samets')) {
        const devs = await fleet(`samets${suffix}`);
        results.samets.push(
          await profiled(`pipeline-samets${suffix}`, () =>
            runLoadInChild(spec(port, devs, 1, windowSingle, perInstant)),
          ),
        );
      }
      if (stock)
        results.stockBatch.push(
          await profiled(`stock-batch${suffix}`, () =>
            runLoadInChild(spec(stock.port, stockDevs, 50, windowBatch)),
          ),
        );
      if (runs.has('batch')) {
        const devs = await fleet(`batch${suffix}`);
        results.batch.push(
          await profiled(`pipeline-batch${suffix}`, () =>
            runLoadInChild(spec(port, devs, 50, windowBatch)),
          ),
        );
      }
      if (repeat > 1 && stock) {
        const per = (r: LoadResult): number => r.acked / r.durationMs;
        const base = per(results.stockSingle.at(-1)!);
        const parts = (
          [
            ['pipeline single', results.single],
            ['pipeline same-ts', results.samets],
            ['commit floor', results.floor],
          ] as const
        ).flatMap(([name, rs]) =>
          rs.length > 0 ? [`${name} ${((per(rs.at(-1)!) / base) * 100).toFixed(1)} %`] : [],
        );
        console.log(`round ${round}: / stock Aedes: ${parts.join(', ')}`);
      }
    }
    await stock?.close();
    await floor?.close();
    await floorWriter?.drain();
    floorWriter?.stop();
    await broker?.close();
    await ingest?.stop();
    /** The run with the median rate (the middle one of N; N = 1: that run). */
    const median = (rs: LoadResult[]): LoadResult =>
      rs.length === 0
        ? none
        : [...rs].sort((x, y) => x.acked / x.durationMs - y.acked / y.durationMs)[
            Math.floor(rs.length / 2)
          ]!;
    const stockSingle = median(results.stockSingle);
    const stockBatch = median(results.stockBatch);
    const single = median(results.single);
    const floorSingle = median(results.floor);
    const ackedFloor = results.floor.reduce((n, r) => n + r.acked, 0);
    const batch = median(results.batch);
    const samets = median(results.samets);
    const ackedSamets = results.samets.reduce((n, r) => n + r.acked, 0);
    const ackedReadings =
      results.single.reduce((n, r) => n + r.acked, 0) +
      results.batch.reduce((n, r) => n + r.acked * 50, 0);

    // 3. Raw COPY of the same rows (same columns, same key), the database's ceiling.
    const copyRows = Math.round((Math.max(batch.acked, 2_000) * 50) / 2);
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    let copySeconds = Infinity;
    let binarySeconds = Infinity;
    if (runs.has('copy')) {
      const copyStarted = performance.now();
      await pipeline(
        Readable.from(
          (function* () {
            let buf = '';
            for (let i = 0; i < copyRows; i++) {
              const dev = `bd-copy-${i % devicesPerRun}`;
              buf += `${new Date(startTs + Math.floor(i / devicesPerRun) * 1000).toISOString()}\t${dev}\t${unit.id}\t${i}\t${20 + (i % 100) / 10}\t7.1\t58.5\t3.9\n`;
              if (buf.length > 256 * 1024) {
                yield buf;
                buf = '';
              }
            }
            if (buf) yield buf;
          })(),
        ),
        client.query(
          copyFrom(
            'COPY readings (ts, device_id, unit_id, seq, temperature_c, ph, methane_pct, battery_v) FROM STDIN',
          ),
        ),
      );
      copySeconds = (performance.now() - copyStarted) / 1000;
      // The same rows in the binary format (what the pipeline sends): the faster of the two is the ceiling.
      const encode = createCopyEncoder();
      const binaryStarted = performance.now();
      await pipeline(
        Readable.from(
          (function* () {
            for (let from = 0; from < copyRows; from += 1000) {
              const chunk: EncodableRow[] = [];
              for (let i = from; i < Math.min(from + 1000, copyRows); i++) {
                chunk.push({
                  deviceId: `bd-copyb-${i % devicesPerRun}`,
                  unitId: unit.id,
                  seq: i,
                  ts: new Date(startTs + Math.floor(i / devicesPerRun) * 1000),
                  values: {
                    temperature_c: 20 + (i % 100) / 10,
                    ph: 7.1,
                    methane_pct: 58.5,
                    battery_v: 3.9,
                  },
                });
              }
              const { data } = encode(chunk);
              // One COPY stream: the header once, the trailer once.
              yield from === 0
                ? data.subarray(0, data.length - 2)
                : from + 1000 >= copyRows
                  ? data.subarray(19)
                  : data.subarray(19, data.length - 2);
            }
          })(),
        ),
        client.query(
          copyFrom(
            `COPY readings (ts, device_id, unit_id, seq, ${encode([{ deviceId: 'x', unitId: unit.id, seq: 0, ts: new Date(), values: { temperature_c: 1, ph: 7, methane_pct: 1, battery_v: 1 } }]).columns.join(', ')}) FROM STDIN (FORMAT binary)`,
          ),
        ),
      );
      binarySeconds = (performance.now() - binaryStarted) / 1000;
    }
    const stored = (
      await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM readings WHERE device_id LIKE 'bd-single-%' OR device_id LIKE 'bd-batch-%'`,
      )
    ).rows[0]!.n;
    const storedFloor = (
      await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM readings WHERE device_id LIKE 'bd-stock-%'`,
      )
    ).rows[0]!.n;
    const storedSamets = Number(
      (
        await client.query<{ n: string }>(
          `SELECT count(*) AS n FROM readings WHERE device_id LIKE 'bd-samets-%'`,
        )
      ).rows[0]!.n,
    );
    const conflictsSamets = Number(
      (
        await client.query<{ n: string }>(
          `SELECT count(*) AS n FROM quarantine WHERE device_id LIKE 'bd-samets-%' AND reasons @> '[{"code":"TS_CONFLICT"}]'`,
        )
      ).rows[0]!.n,
    );
    await client.end();
    await ingestDatabase.close();
    await database.close();

    const rate = (n: number, ms: number): number => Math.round(n / (ms / 1000));
    const stockRate = rate(stockSingle.acked, stockSingle.durationMs);
    const singleRate = rate(single.acked, single.durationMs);
    const floorRate = rate(floorSingle.acked, floorSingle.durationMs);
    const batchReadings = rate(batch.acked * 50, batch.durationMs);
    const copyRate = Math.round(copyRows / Math.min(copySeconds, binarySeconds));
    const rows: [string, number, number][] = [
      ['stock Aedes, 1 reading/msg', stockRate, stockRate],
      [
        'stock Aedes, 50 readings/msg',
        rate(stockBatch.acked, stockBatch.durationMs),
        rate(stockBatch.acked * 50, stockBatch.durationMs),
      ],
      ['commit floor: stock Aedes + group commit of 1 fixed row/msg', floorRate, floorRate],
      ['Thamani pipeline, 1 reading/msg', singleRate, singleRate],
      ['Thamani pipeline, 50 readings/msg', rate(batch.acked, batch.durationMs), batchReadings],
      [
        `Thamani pipeline, 1 reading/msg, ${perInstant} per instant (same ts)`,
        rate(samets.acked, samets.durationMs),
        rate(samets.acked, samets.durationMs),
      ],
      ['raw COPY into readings (the faster of text and binary)', 0, copyRate],
    ];
    const pct = (x: number, y: number): string => `${((x / y) * 100).toFixed(1)} %`;
    console.log(
      `\n${devicesPerRun} devices per run, ${seconds} s per run${repeat > 1 ? `, median of ${repeat} alternating runs` : ''}, window ${windowSingle} (single) / ${windowBatch} (batch) per connection, QoS 1 over mTLS (TLS 1.3), PostgreSQL 17 embedded (fsync on)`,
    );
    console.log('| load | acked msg/s | acked readings/s |\n|---|---:|---:|');
    for (const [name, m, r] of rows)
      if (r > 0)
        console.log(
          `| ${name} | ${m ? m.toLocaleString('en') : '-'} | ${r.toLocaleString('en')} |`,
        );
    console.log('');
    if (runs.has('stock') && runs.has('single'))
      console.log(
        `pipeline / stock Aedes, single readings: ${pct(singleRate, stockRate)} (aim ≥ 50 %)`,
      );
    if (runs.has('stock') && runs.has('floor'))
      console.log(`commit floor / stock Aedes:              ${pct(floorRate, stockRate)}`);
    if (runs.has('floor') && runs.has('single'))
      console.log(`pipeline / commit floor, single:         ${pct(singleRate, floorRate)}`);
    if (runs.has('samets') && runs.has('single'))
      console.log(
        `pipeline same-ts / pipeline single:      ${pct(rate(samets.acked, samets.durationMs), singleRate)}`,
      );
    if (runs.has('batch') && runs.has('copy'))
      console.log(
        `pipeline batched / raw COPY, readings:   ${pct(batchReadings, copyRate)} (aim ≥ 50 %)`,
      );
    if (runs.has('copy'))
      console.log(
        `raw COPY: text ${Math.round(copyRows / copySeconds).toLocaleString('en')} rows/s, binary ${Math.round(copyRows / binarySeconds).toLocaleString('en')} rows/s`,
      );
    const commitLine = (c: typeof floorCommits): string =>
      `${c.commits}, mean rows per commit ${(c.committedRows / Math.max(1, c.commits)).toFixed(0)}, mean commit ${(c.commitMsTotal / Math.max(1, c.commits)).toFixed(1)} ms`;
    if (ingest) console.log(`pipeline commits: ${commitLine(ingest.counters)}`);
    if (floorWriter) console.log(`commit floor commits: ${commitLine(floorCommits)}`);
    console.log(
      `check: acknowledged ${ackedReadings} readings, stored ${stored}; commit floor acknowledged ${ackedFloor}, stored ${storedFloor}; load errors: ${[...results.single, ...results.batch, ...results.floor].reduce((n, r) => n + r.errors.length, 0)}`,
    );
    // Stored or quarantined (TS_CONFLICT), never dropped: at least what was acknowledged, and
    // the counter of readings stored is the rows.
    if (runs.has('samets'))
      console.log(
        `check same-ts: acknowledged ${ackedSamets} readings, stored ${storedSamets}, quarantined as TS_CONFLICT ${conflictsSamets}`,
      );
    if (storedSamets + conflictsSamets < ackedSamets) {
      console.error('FAIL: fewer readings stored or quarantined than acknowledged (same ts)');
      process.exitCode = 1;
    }
    if (ingest && ingest.counters.accepted !== Number(stored) + storedSamets) {
      console.error(
        `FAIL: readings_accepted_total ${ingest.counters.accepted} is not the rows stored (${Number(stored) + storedSamets})`,
      );
      process.exitCode = 1;
    }
    if (Number(stored) < ackedReadings || Number(storedFloor) < ackedFloor) {
      console.error('FAIL: fewer readings stored than acknowledged');
      process.exitCode = 1;
    }
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
