/**
 * `npm run bench -- storm`: a reconnect storm. N enrolled devices (each its own certificate, from
 * its own loopback address) connect and publish; then the gateway is restarted (closed, made
 * again, listening on the same port) and every device comes back at once, with the device
 * contract's backoff. Measured: time until every device is connected again and has a reading
 * acknowledged, TLS handshakes per second, CONNECT-to-CONNACK p99; at rest before the storm, the
 * gateway's memory per idle connection and the cost of one revalidation sweep. The same storm
 * against stock Aedes (same TLS options, no hooks) is the ceiling the issue compares with.
 *
 *   npm run bench -- storm [--devices 1000] [--key ec|rsa] [--only thamani,stock] [--repeat 1]
 *                          [--keys 250 for rsa, N for ec] [--resume 1] [--database thamani_storm_bench]
 *                          [--handshake-target-ms 2000] [--handshake-floor 50]   (MQTT_HANDSHAKE_*; 0 = off)
 *                          [--max-pending 2500]   (MQTT_MAX_PENDING)
 *
 * Runs alternate (stock, thamani, stock, …) so that the machine's drift hits both. The fleet's
 * keys and certificates are cached under node_modules/.cache/thamani-storm/<key>/ (bench/storm-fleet.ts).
 *
 * Besides the storm's totals it prints where the time went: the restart itself (the old
 * gateway's close and the new one's start, wall and CPU ms of this process), the devices' view
 * of it (first connection lost → the gateway listening again → every device back), the attempts
 * each device needed, and why attempts were lost before their handshake.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { createAuditLog, createSecurityEvents, ephemeralAuditSigner } from '../audit/index.ts';
import { INGEST_LOGIN_ROLE } from '../app/database.ts';
import { openAsLoginRole } from '../app/db-roles.ts';
import { createBroker, createPresence, type Broker } from '../broker/index.ts';
import { loadConfig } from '../config/config.ts';
import { createDatabase } from '../db/client.ts';
import { runMigrations } from '../db/migrate.ts';
import { createDeviceEvents } from '../devices/device-events.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { createIngest } from '../ingest/ingest-service.ts';
import { createPki } from '../provisioning/index.ts';
import { DEVICE_BACKOFF } from '../simulators/backoff.ts';
import { deviceKeyTypes, type DeviceKeyType } from '../simulators/key-types.ts';
import { numberArg, stringArg } from './args.ts';
import { openBenchDatabase } from './bench-db.ts';
import { startStockAedes } from './stock-aedes.ts';
import { insertStormFleet, loadStormFleet } from './storm-fleet.ts';
import type { PhaseResult, StormSpec } from './storm-load.ts';

const n = numberArg('devices', 1000);
const keyKind = stringArg('key', 'rsa');
const repeat = numberArg('repeat', 1);
const only = new Set(stringArg('only', 'stock,thamani').split(','));
const resume = numberArg('resume', 1) === 1;
const logger = pino({ level: 'warn' });
const self = fileURLToPath(import.meta.url);
const root = self.includes(`${path.sep}node_modules${path.sep}`)
  ? self.slice(0, self.indexOf(`${path.sep}node_modules${path.sep}`))
  : path.join(path.dirname(self), '..');
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** What one restart cost, in this process: wall and CPU ms of the close and of the start; when listening again. */
interface Restart {
  closeMs: number;
  closeCpuMs: number;
  startMs: number;
  startCpuMs: number;
  listeningAt: number;
}

async function timedRestart(
  close: () => Promise<void>,
  start: () => Promise<void>,
): Promise<Restart> {
  const cpu = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  let t = performance.now();
  let c = cpu();
  await close();
  const closeMs = performance.now() - t;
  const closeCpuMs = cpu() - c;
  t = performance.now();
  c = cpu();
  await start();
  return {
    closeMs,
    closeCpuMs,
    startMs: performance.now() - t,
    startCpuMs: cpu() - c,
    listeningAt: Date.now(),
  };
}

interface Gateway {
  port: number;
  restart(): Promise<Restart>;
  close(): Promise<void>;
  /** Idle costs measured with every device connected (Thamani only). */
  idle?(): Promise<string>;
}

async function startLoad(
  spec: StormSpec,
): Promise<{ child: ChildProcess; next(): Promise<PhaseResult> }> {
  const file = path.join(os.tmpdir(), `thamani-storm-${process.pid}-${Date.now()}.json`);
  await writeFile(file, JSON.stringify(spec), { mode: 0o600 });
  const loaderArgs = self.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const script = path.join(path.dirname(self), `storm-load${path.extname(self)}`);
  const waiting: ((r: PhaseResult) => void)[] = [];
  const queued: PhaseResult[] = [];
  const child = spawn(process.execPath, [...loaderArgs, script, file], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  // The spec holds every device's private key: gone once the fleet has read it (or died).
  child.once('exit', () => void rm(file, { force: true }));
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    const r = JSON.parse(line) as PhaseResult;
    const w = waiting.shift();
    if (w) w(r);
    else queued.push(r);
  });
  return {
    child,
    next: () =>
      new Promise((resolve) => (queued.length ? resolve(queued.shift()!) : waiting.push(resolve))),
  };
}

function memory(): NodeJS.MemoryUsage {
  gc();
  gc();
  return process.memoryUsage();
}

async function main(): Promise<void> {
  if (!(deviceKeyTypes as readonly string[]).includes(keyKind))
    throw new Error(`--key ${keyKind}: one of ${deviceKeyTypes.join(', ')}`);
  const keyType = keyKind as DeviceKeyType;
  const { ca, devices } = await loadStormFleet({
    root,
    devices: n,
    keyType,
    ...(process.argv.includes('--keys') ? { keys: numberArg('keys', 0) } : {}),
    logger,
  });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'thamani-storm-'));
  const server = await openBenchDatabase({
    name: stringArg('database', 'thamani_storm_bench'),
    fresh: true,
    temporary: true,
    logger,
  });
  try {
    await runMigrations(server.url, logger);
    const database = createDatabase({ url: server.url, poolMax: 10, logger });
    const { db, pool } = database;
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
    const deviceService = createDeviceService({ db, audit });
    const admin = { actorId: 'bench', actorRole: 'admin' };
    const site = await deviceService.addSite({ name: 'Storm' }, admin);
    const unit = await deviceService.addUnit(
      { site: site.id, kind: 'biodigester', name: 'S' },
      admin,
    );
    await insertStormFleet(pool, unit.id, devices);
    const shipped = loadConfig({ THAMANI_DATA_DIR: dir });
    const pki = createPki({ db, ca, audit, config: shipped.pki, brokerUrl: '' });
    const events = createDeviceEvents({ url: server.url, logger });
    await events.ready;
    const tls = {
      key: ca.server.privateKeyPem,
      cert: `${ca.server.certPem.trim()}\n${ca.issuing.certPem}`,
      ca: ca.caPems,
    };
    const crls = async (): Promise<string[] | undefined> =>
      ca.rootCrlPem ? [(await pki.crl()).pem, ca.rootCrlPem] : undefined;
    const securityEvents = createSecurityEvents({
      audit,
      logger,
      config: { windowMs: 60_000, maxKeys: 1000 },
    });
    const startTs = Date.now() - 86_400_000;

    /** Counts the registry lookups the gateway makes (one transaction each). */
    const lookups = { n: 0 };
    const identity: typeof pki = Object.create(pki) as typeof pki;
    identity.connectionIdentity = (serial) => {
      lookups.n++;
      return pki.connectionIdentity(serial);
    };
    // (Since the batched lookups: a build without it never calls this.)
    const many = (pki as Partial<typeof pki>).connectionIdentities;
    if (many) {
      identity.connectionIdentities = (serials) => {
        lookups.n++;
        return many(serials);
      };
    }

    const thamani = async (): Promise<Gateway> => {
      const brokerRef: { current?: Broker } = {};
      const ingest = createIngest({
        pool: ingestDatabase.pool,
        logger,
        config: shipped.ingest,
        publisher: { publish: (...a) => brokerRef.current!.publisher.publish(...a) },
        // The same ingest serves the broker before and after the restart: it reaches whichever is current.
        backpressure: {
          hold: () => brokerRef.current!.backpressure.hold(),
          release: () => brokerRef.current!.backpressure.release(),
        },
      });
      let port = 0;
      // Kept across the restart, as app/start.ts keeps them on disk: devices may resume.
      const ticketKeys = randomBytes(48);
      const make = async (): Promise<Broker> => {
        const broker = await createBroker({
          config: {
            ...shipped.mqtt,
            host: '127.0.0.1',
            port,
            handshakeTargetMs: numberArg('handshake-target-ms', shipped.mqtt.handshakeTargetMs),
            handshakeFloor: numberArg('handshake-floor', shipped.mqtt.handshakeFloor),
            maxPending: numberArg('max-pending', shipped.mqtt.maxPending),
          },
          logger,
          tls: { ...tls, crl: await crls(), ticketKeys },
          crl: crls,
          identity,
          events,
          securityEvents,
          presence: createPresence({ pool, logger }),
        });
        brokerRef.current = broker;
        port = (await broker.listen({ handlers: { telemetry: ingest.handleTelemetry } })).port;
        return broker;
      };
      let broker = await make();
      return {
        port,
        restart: () =>
          timedRestart(
            () => broker.close(),
            async () => {
              broker = await make();
            },
          ),
        async close() {
          await broker.close();
          await ingest.stop();
        },
        async idle() {
          const sessions = broker.clients().length;
          const before = lookups.n;
          const cpu = process.cpuUsage();
          const t = performance.now();
          await broker.revalidateNow();
          const wall = performance.now() - t;
          const used = process.cpuUsage(cpu);
          return `revalidation sweep at ${sessions} sessions: ${lookups.n - before} registry queries, ${((used.user + used.system) / 1000).toFixed(0)} ms CPU, ${wall.toFixed(0)} ms wall (every ${shipped.mqtt.revalidateIntervalMs / 1000} s: ${(((used.user + used.system) / 1000 / shipped.mqtt.revalidateIntervalMs) * 100).toFixed(2)} % of a core, ${((lookups.n - before) / (shipped.mqtt.revalidateIntervalMs / 1000)).toFixed(0)} queries/s)`;
        },
      };
    };
    const stock = async (): Promise<Gateway> => {
      let s = await startStockAedes(tls);
      const port = s.port;
      return {
        port,
        restart: () =>
          timedRestart(
            () => s.close(),
            async () => {
              s = await startStockAedes(tls, {}, port);
            },
          ),
        close: () => s.close(),
      };
    };

    const results: {
      name: string;
      up: PhaseResult;
      storm: PhaseResult;
      memory: string;
      idle: string;
      cpuMsPerConnect: number;
      restart: Restart;
    }[] = [];
    const order = ['stock', 'thamani'].filter((x) => only.has(x));
    for (let round = 1; round <= repeat; round++) {
      for (const name of order) {
        const before = memory();
        const gateway = name === 'stock' ? await stock() : await thamani();
        const load = await startLoad({
          port: gateway.port,
          ca: ca.rootCertPem,
          devices: devices.map((d) => ({ id: d.id, key: d.key, cert: d.cert })),
          connectTimeoutMs: 10_000,
          backoff: DEVICE_BACKOFF,
          resume,
          startTs: startTs + round * 10_000_000 + (name === 'stock' ? 0 : 5_000_000),
          // The same devices in every round: their seq must go on rising, else the gateway
          // quarantines round 2's readings as SEQ_REGRESSION (acknowledged, not in readings).
          firstSeq: (round - 1) * 1000,
        });
        const up = await load.next();
        await new Promise((r) => setTimeout(r, 2000));
        const after = memory();
        const per = (k: keyof NodeJS.MemoryUsage): string =>
          `${((after[k] - before[k]) / n / 1024).toFixed(1)}`;
        const mem = `rss ${per('rss')} KB, heap ${per('heapUsed')} KB, external ${per('external')} KB (of which ArrayBuffers ${per('arrayBuffers')} KB) per connection`;
        const idle = gateway.idle ? await gateway.idle() : '';
        const cpu = process.cpuUsage();
        load.child.stdin!.write('mark\n');
        const restart = await gateway.restart();
        const storm = await load.next();
        const used = process.cpuUsage(cpu);
        load.child.stdin!.write('stop\n');
        await new Promise((r) => load.child.once('exit', r));
        await gateway.close();
        const cpuMsPerConnect =
          (used.user + used.system) / 1000 / Math.max(1, storm.connack['0'] ?? 0);
        results.push({ name, up, storm, memory: mem, idle, cpuMsPerConnect, restart });
        console.log(
          `${name} round ${round}: storm ${(storm.durationMs / 1000).toFixed(1)} s, ${storm.handshakesPerSecond} handshakes/s (peak ${storm.peakHandshakesPerSecond}), CONNECT→CONNACK p99 ${storm.connectToConnackMs.p99} ms, TCP→CONNACK p99 ${storm.tcpToConnackMs.p99} ms, resumed ${storm.resumed}/${storm.handshakes}, CONNACKs ${JSON.stringify(storm.connack)}, timeouts ${storm.timeouts}, lost before handshake ${storm.lostBeforeHandshake}, attempts ${storm.attempts}, gateway CPU ${cpuMsPerConnect.toFixed(2)} ms/CONNECT`,
        );
        const gapMs = restart.listeningAt - storm.startAt;
        console.log(
          `  restart: close ${restart.closeMs.toFixed(0)} ms wall (${restart.closeCpuMs.toFixed(0)} ms CPU), start ${restart.startMs.toFixed(0)} ms wall (${restart.startCpuMs.toFixed(0)} ms CPU); first connection lost → listening again ${gapMs} ms → all back ${storm.endAt - restart.listeningAt} ms (last ECONNREFUSED at ${storm.lastRefusedMs} ms, first CONNACK at ${storm.firstConnackMs} ms)`,
        );
        console.log(
          `  attempts per device: p50 ${storm.attemptsPerDevice.p50}, p90 ${storm.attemptsPerDevice.p90}, p99 ${storm.attemptsPerDevice.p99}, max ${storm.attemptsPerDevice.max} ${JSON.stringify(storm.attemptsPerDevice.counts)}; lost before handshake by cause ${JSON.stringify(storm.lostBy)}; successful attempt started at p50 ${storm.backStartMs.p50} / p90 ${storm.backStartMs.p90} / p99 ${storm.backStartMs.p99} / max ${storm.backStartMs.max} ms`,
        );
        console.log(
          `  load generator (one process for every device): ${storm.loadCpuMs} ms CPU over the storm (${((storm.loadCpuMs / storm.durationMs) * 100).toFixed(0)} % of a core), event-loop delay p99 ${storm.loadLoopDelayMs.p99} ms, max ${storm.loadLoopDelayMs.max} ms`,
        );
        console.log(`  at rest: ${mem}${idle ? `; ${idle}` : ''}`);
      }
    }
    await events.close();
    const client = await pool.connect();
    const stored = Number(
      (await client.query<{ n: string }>(`SELECT count(*) AS n FROM readings`)).rows[0]!.n,
    );
    const quarantined = (
      await client.query<{ reason: string; n: string }>(
        `SELECT r->>'code' AS reason, count(*) AS n FROM quarantine, jsonb_array_elements(reasons) r GROUP BY 1 ORDER BY 1`,
      )
    ).rows;
    client.release();
    const acked = results
      .filter((r) => r.name === 'thamani')
      .reduce((s, r) => s + r.up.acked + r.storm.acked, 0);
    await ingestDatabase.close();
    await database.close();

    const median = (name: string, f: (r: (typeof results)[number]) => number): number => {
      const xs = results
        .filter((r) => r.name === name)
        .map(f)
        .sort((a, b) => a - b);
      return xs.length ? xs[Math.floor(xs.length / 2)]! : NaN;
    };
    console.log(
      `\n${n} devices, ${keyType === 'rsa' ? 'RSA-2048' : 'ECDSA P-256'} device keys, TLS 1.3, resumption offered: ${resume ? 'yes' : 'no'}, backoff ${JSON.stringify(DEVICE_BACKOFF)}${repeat > 1 ? `, median of ${repeat} alternating rounds` : ''}`,
    );
    console.log(
      '| gateway | all back (s) | handshakes/s | peak/s | CONNECT→CONNACK p99 (ms) | TCP→CONNACK p99 (ms) | CPU ms/CONNECT | lost → listening (ms) | restart CPU ms | attempts/device p99 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const name of order) {
      console.log(
        `| ${name} | ${(median(name, (r) => r.storm.durationMs) / 1000).toFixed(1)} | ${median(name, (r) => r.storm.handshakesPerSecond)} | ${median(name, (r) => r.storm.peakHandshakesPerSecond)} | ${median(name, (r) => r.storm.connectToConnackMs.p99)} | ${median(name, (r) => r.storm.tcpToConnackMs.p99)} | ${median(name, (r) => r.cpuMsPerConnect).toFixed(2)} | ${median(name, (r) => r.restart.listeningAt - r.storm.startAt)} | ${median(name, (r) => r.restart.closeCpuMs + r.restart.startCpuMs).toFixed(0)} | ${median(name, (r) => r.storm.attemptsPerDevice.p99)} |`,
      );
    }
    if (order.length === 2)
      console.log(
        `thamani / stock handshakes/s: ${((median('thamani', (r) => r.storm.handshakesPerSecond) / median('stock', (r) => r.storm.handshakesPerSecond)) * 100).toFixed(1)} % (aim ≥ 90 %)`,
      );
    if (only.has('thamani')) {
      console.log(
        `check: acknowledged ${acked} readings, stored ${stored}${quarantined.length ? `, quarantined ${quarantined.map((q) => `${q.n} ${q.reason}`).join(', ')}` : ''}`,
      );
      if (stored < acked) {
        console.error('FAIL: fewer readings stored than acknowledged');
        process.exitCode = 1;
      }
    }
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
