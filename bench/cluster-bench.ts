/**
 * `npm run bench -- cluster`: what clustering costs (ADR 0010). The real `thamani start` in child
 * processes on one database, the same load (bench/mqtt-load.ts, in its own process) against:
 *
 *   memory   one node, no REDIS_URL (as `npm start`)
 *   redis    one node with REDIS_URL (a real redis-server)
 *   two      two nodes with REDIS_URL behind a real haproxy (TCP, send-proxy-v2)
 *
 * Reported per run: acknowledged readings/s and the gateway processes' CPU (user + system, read
 * from /proc over the load window) per acknowledged reading; then the reconnect time of a dead
 * node's devices (MQTT.js clients through HAProxy, one node SIGKILLed).
 *
 *   npm run bench -- cluster [--seconds 15 --devices 20 --window 20 --repeat 3 --reconnect-devices 60]
 *                            [--database thamani_cluster_bench]
 *
 * Runs alternate (memory, redis, two, memory, …) so that drift of a shared machine hits each
 * alike, after a warm-up round that is not counted; medians are reported. Needs redis-server and haproxy on PATH.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { createAuditLog, ephemeralAuditSigner } from '../audit/index.ts';
import { createDatabase } from '../db/client.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { createPki, loadOrCreateCa } from '../provisioning/index.ts';
import { httpsRequest } from '../simulators/https-json.ts';
import { deviceKeyAndCsr } from '../test/device-keys.ts';
import { startHaproxy } from '../test/haproxy-fixture.ts';
import { freePort } from '../test/ports.ts';
import { startRedis } from '../test/redis-fixture.ts';
import { numberArg, stringArg } from './args.ts';
import { openBenchDatabase } from './bench-db.ts';
import { runLoadInChild } from './load-runner.ts';
import type { LoadResult, LoadSpec } from './mqtt-load.ts';

const seconds = numberArg('seconds', 15);
const devicesPerRun = numberArg('devices', 20);
const window = numberArg('window', 20);
const repeat = numberArg('repeat', 3);
const reconnectDevices = numberArg('reconnect-devices', 60);
const logger = pino({ level: 'warn' });
const self = fileURLToPath(import.meta.url);
const root = self.includes(`${path.sep}node_modules${path.sep}`)
  ? self.slice(0, self.indexOf(`${path.sep}node_modules${path.sep}`))
  : path.join(path.dirname(self), '..');
const TICKS_PER_S = 100; // Linux USER_HZ: /proc/<pid>/stat counts CPU time in these

interface Node {
  child: ChildProcess;
  mqttPort: number;
  apiPort: number;
  kill(): Promise<void>;
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
}

async function startNode(o: {
  databaseUrl: string;
  dataDir: string;
  env: Record<string, string>;
}): Promise<Node> {
  const [mqttPort, apiPort, httpPort, devicePort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const child = spawn(process.execPath, [path.join(root, 'bin', 'thamani.js'), 'start'], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: o.databaseUrl,
      THAMANI_DATA_DIR: o.dataDir,
      MQTT_HOST: '127.0.0.1',
      HTTPS_HOST: '127.0.0.1',
      MQTT_PORT: String(mqttPort),
      HTTPS_PORT: String(apiPort),
      HTTP_REDIRECT_PORT: String(httpPort),
      DEVICE_HTTPS_PORT: String(devicePort),
      PKI_PASSPHRASE: 'cluster bench passphrase',
      APP_DB_PASSWORD: 'cluster bench api role',
      INGEST_DB_PASSWORD: 'cluster bench ingest role',
      // The load is the measure, not the per-device limits.
      MQTT_RATE_PER_SECOND: '1000000',
      MQTT_RATE_BURST: '1000000',
      MQTT_DEVICE_CONNECTS_MAX: '1000',
      LOG_LEVEL: 'warn',
      LOG_FORMAT: 'json',
      ...o.env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const deadline = Date.now() + 300_000;
  for (;;) {
    await new Promise((r) => setTimeout(r, 300));
    if (child.exitCode !== null) throw new Error(`thamani start exited: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`thamani start not ready: ${stderr}`);
    try {
      const ca = readFileSync(path.join(o.dataDir, 'pki', 'root.crt'), 'utf8');
      if ((await httpsRequest(`https://localhost:${apiPort}/readyz`, { ca })).status === 200) break;
    } catch {
      // not up yet
    }
  }
  return {
    child,
    mqttPort,
    apiPort,
    kill: (signal: NodeJS.Signals = 'SIGTERM') =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
      }),
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const server = await openBenchDatabase({
    name: stringArg('database', 'thamani_cluster_bench'),
    fresh: true,
    temporary: true,
    logger,
  });
  const redis = await startRedis();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'thamani-cluster-bench-'));
  const all: (Node & { kill(signal?: NodeJS.Signals): Promise<void> })[] = [];
  try {
    // The first node creates the CA and runs the migrations; the rest share its data directory.
    const memory = (await startNode({
      databaseUrl: server.url,
      dataDir,
      env: {},
    })) as (typeof all)[0];
    all.push(memory);
    const clustered = { REDIS_URL: redis.url };
    const redisNode = (await startNode({
      databaseUrl: server.url,
      dataDir,
      env: clustered,
    })) as (typeof all)[0];
    all.push(redisNode);
    const proxied = {
      ...clustered,
      MQTT_PROXY_PROTOCOL: 'true',
      MQTT_TRUSTED_PROXIES: '127.0.0.1',
    };
    const pair = [
      (await startNode({ databaseUrl: server.url, dataDir, env: proxied })) as (typeof all)[0],
      (await startNode({ databaseUrl: server.url, dataDir, env: proxied })) as (typeof all)[0],
    ];
    all.push(...pair);
    const proxy = await startHaproxy(
      pair.map((n, i) => ({ name: `gw${i + 1}`, mqttPort: n.mqttPort, apiPort: n.apiPort })),
    );
    // Give HAProxy's health checks (every 500 ms) time to find both nodes up.
    await new Promise((r) => setTimeout(r, 3000));

    const database = createDatabase({ url: server.url, poolMax: 4, logger });
    const audit = createAuditLog({ db: database.db, signer: ephemeralAuditSigner() });
    const ca = await loadOrCreateCa({
      dir: path.join(dataDir, 'pki'),
      passphrase: 'cluster bench passphrase',
      serverNames: ['localhost'],
      serverCertDays: 30,
      logger,
    });
    const pki = createPki({
      db: database.db,
      ca,
      audit,
      config: {
        passphrase: undefined,
        dir: dataDir,
        deviceCertDays: 30,
        serverCertDays: 30,
        enrolmentTokenHours: 1,
        renewalWindowDays: 1,
        rotationOverlapHours: 1,
      },
      brokerUrl: '',
    });
    const devices = createDeviceService({ db: database.db, audit });
    const admin = { actorId: 'bench', actorRole: 'admin' };
    const site = await devices.addSite({ name: 'Cluster bench' }, admin);
    const unit = await devices.addUnit({ site: site.id, kind: 'biodigester', name: 'D' }, admin);
    const fleet = async (prefix: string, n: number): Promise<LoadSpec['devices']> => {
      const out: LoadSpec['devices'] = [];
      for (let i = 0; i < n; i++) {
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
    const startTs = Date.now() - 6 * 86_400_000;
    const setups = {
      memory: { port: memory.mqttPort, nodes: [memory] },
      redis: { port: redisNode.mqttPort, nodes: [redisNode] },
      two: { port: proxy.mqttPort, nodes: pair },
    };
    const results: Record<keyof typeof setups, { rate: number; cpuUs: number }[]> = {
      memory: [],
      redis: [],
      two: [],
    };
    // Round 0 warms every node up (JIT, pools, TLS sessions) and is not counted.
    for (let round = 0; round <= repeat; round++) {
      for (const name of Object.keys(setups) as (keyof typeof setups)[]) {
        const setup = setups[name];
        const devs = await fleet(`${name}-${round}`, devicesPerRun);
        const before = setup.nodes.map((n) => cpuSeconds(n.child.pid!));
        const r: LoadResult = await runLoadInChild({
          port: setup.port,
          ca: ca.rootCertPem,
          devices: devs,
          durationMs: seconds * 1000,
          window,
          readingsPerMessage: 1,
          kind: 'biodigester',
          startTs,
        });
        const cpu = setup.nodes.reduce(
          (sum, n, i) => sum + cpuSeconds(n.child.pid!) - before[i]!,
          0,
        );
        const rate = r.acked / (r.durationMs / 1000);
        const cpuUs = r.acked > 0 ? (cpu * 1e6) / r.acked : NaN;
        if (round > 0) results[name].push({ rate, cpuUs });
        console.log(
          `${name} ${round === 0 ? 'warm-up' : `round ${round}`}: ${rate.toFixed(0)} acknowledged readings/s, gateway CPU ${cpuUs.toFixed(0)} µs per reading${r.errors.length ? `, errors: ${r.errors.slice(0, 3).join('; ')}` : ''}`,
        );
      }
    }
    const m = (name: keyof typeof setups) => ({
      rate: median(results[name].map((x) => x.rate)),
      cpuUs: median(results[name].map((x) => x.cpuUs)),
    });
    const [mem, red, two] = [m('memory'), m('redis'), m('two')];
    console.log(
      `\nmedians of ${repeat} rounds, ${devicesPerRun} devices × window ${window}, ${seconds} s each:`,
    );
    console.log(`| setup | readings/s | gateway CPU µs/reading |`);
    console.log(`| --- | ---: | ---: |`);
    console.log(`| one node, in memory | ${mem.rate.toFixed(0)} | ${mem.cpuUs.toFixed(0)} |`);
    console.log(`| one node, REDIS_URL | ${red.rate.toFixed(0)} | ${red.cpuUs.toFixed(0)} |`);
    console.log(
      `| two nodes, REDIS_URL, HAProxy | ${two.rate.toFixed(0)} | ${two.cpuUs.toFixed(0)} |`,
    );
    console.log(
      `REDIS_URL vs in memory: ${((red.cpuUs / mem.cpuUs - 1) * 100).toFixed(1)} % CPU per reading; two nodes vs one (memory): ${(two.rate / mem.rate).toFixed(2)} × readings/s`,
    );

    // Reconnect: devices through HAProxy with the device contract's quick retry; one node dies.
    const reDevs = await fleet('reconnect', reconnectDevices);
    const clients = reDevs.map((d) =>
      mqtt.connect(`mqtts://localhost:${proxy.mqttPort}`, {
        key: d.key,
        cert: d.cert,
        ca: ca.rootCertPem,
        clientId: d.id,
        protocolVersion: 4,
        clean: false,
        keepalive: 30,
        reconnectPeriod: 200,
        connectTimeout: 30_000,
      }),
    );
    for (const c of clients) c.on('error', () => undefined);
    const all_connected = (): boolean => clients.every((c) => c.connected);
    while (!all_connected()) await new Promise((r) => setTimeout(r, 100));
    const before = performance.now();
    await pair[0]!.kill('SIGKILL');
    while (clients.every((c) => c.connected)) await new Promise((r) => setTimeout(r, 10));
    const dropped = clients.filter((c) => !c.connected).length;
    while (!all_connected()) await new Promise((r) => setTimeout(r, 20));
    console.log(
      `node SIGKILLed: ${dropped} of ${clients.length} devices dropped, all connected again through HAProxy after ${(performance.now() - before).toFixed(0)} ms`,
    );
    for (const c of clients) c.end(true);
    await database.close();
    await proxy.stop();
  } finally {
    await Promise.all(all.map((n) => n.kill()));
    await redis.stop();
    await server.stop();
  }
}

await main();
process.exit(0);
