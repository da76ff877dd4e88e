/**
 * `npm run bench -- enrol`: enrolment of simulated devices with ECDSA P-256 keys against RSA 2048
 * ones, and mTLS handshakes per second at the gateway's device listener for each (ADR 0002).
 *
 *   npm run bench -- enrol [--devices 1000] [--key ec|rsa|both] [--rounds 4] [--concurrency 8]
 *                          [--handshake-seconds 8] [--handshake-workers 16] [--database thamani_enrol_bench]
 *
 * Enrolment is what `thamani simulate` does for a device on its first run (simulators/device.ts
 * loadOrEnrol): register it (POST /devices), make its key and CSR, get a one-time token, POST
 * /enroll, keep the identity on disk; against the real API (HTTPS, pki and device routes, the
 * registry in PostgreSQL) in this process, `--concurrency` devices at a time. The devices of
 * each key type are split into `--rounds` parts run alternately (ec, rsa, ec, …) so that the
 * machine's drift hits both. Then the real broker listens and a child process reconnects
 * `--handshake-workers` of the enrolled devices of each type one after the other for
 * `--handshake-seconds`, alternating the types: TLS handshakes alone, and handshake + CONNECT/
 * CONNACK; the gateway's CPU time per handshake (this process) is the steadier number.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { buildApp } from '../api/app.ts';
import { scopedServices } from '../api/scoped-services.ts';
import { createAuditLog, createSecurityEvents, ephemeralAuditSigner } from '../audit/index.ts';
import { createAdminTokenAuthenticator } from '../auth/admin-token.ts';
import { createBroker, createPresence } from '../broker/index.ts';
import { createDatabase } from '../db/client.ts';
import { runMigrations } from '../db/migrate.ts';
import { deviceRoutes } from '../devices/device-routes.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { createPki, loadOrCreateCa } from '../provisioning/index.ts';
import { pkiRoutes } from '../provisioning/pki-routes.ts';
import { createApiClient } from '../simulators/api-client.ts';
import { loadOrEnrol, type DeviceIdentity } from '../simulators/device.ts';
import { deviceKeyAndCsr, deviceKeyTypes, type DeviceKeyType } from '../simulators/keys.ts';
import { numberArg, stringArg } from './args.ts';
import { openBenchDatabase } from './bench-db.ts';
import type { HandshakeResult, HandshakeSpec } from './handshake-load.ts';

const devicesPerType = numberArg('devices', 1000);
const keyArg = stringArg('key', 'both');
if (keyArg !== 'both' && !(deviceKeyTypes as readonly string[]).includes(keyArg))
  throw new Error(`--key: ec, rsa or both (got ${keyArg})`);
const types: DeviceKeyType[] = keyArg === 'both' ? ['ec', 'rsa'] : [keyArg as DeviceKeyType];
const rounds = Math.max(1, numberArg('rounds', 4));
const concurrency = Math.max(1, numberArg('concurrency', 8));
const handshakeSeconds = numberArg('handshake-seconds', 8);
const handshakeWorkers = numberArg('handshake-workers', 16);
const logger = pino({ level: 'warn' });
const TOKEN = `bench-admin-token-${Math.random().toString(36).slice(2)}-0123456789abcdef`;

const self = fileURLToPath(import.meta.url);
const loadScript = path.join(path.dirname(self), `handshake-load${path.extname(self)}`);
const loaderArgs = self.endsWith('.ts') ? ['--import', 'tsx'] : [];

async function runHandshakes(dir: string, spec: HandshakeSpec): Promise<HandshakeResult> {
  const file = path.join(dir, `handshake-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify(spec), { mode: 0o600 });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...loaderArgs, loadScript, file], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split('\n').pop()!) as HandshakeResult)
        : reject(new Error(`handshake load exited with ${code}`)),
    );
  });
}

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'thamani-enrol-bench-'));
  const server = await openBenchDatabase({
    name: stringArg('database', 'thamani_enrol_bench'),
    fresh: true,
    temporary: true,
    logger,
  });
  try {
    await runMigrations(server.url, logger);
    const database = createDatabase({ url: server.url, poolMax: 10, logger });
    const { db, pool } = database;
    const audit = createAuditLog({ db, signer: ephemeralAuditSigner() });
    const ca = await loadOrCreateCa({
      dir: path.join(dir, 'pki'),
      passphrase: 'bench passphrase 1234',
      serverNames: ['localhost', '127.0.0.1'],
      serverCertDays: 30,
      logger,
    });
    const pkiConfig = {
      passphrase: undefined,
      dir,
      deviceCertDays: 397,
      serverCertDays: 30,
      enrolmentTokenHours: 1,
      renewalWindowDays: 30,
      rotationOverlapHours: 24,
    };
    const pki = createPki({ db, ca, audit, config: pkiConfig, brokerUrl: '' });
    const devices = createDeviceService({ db, audit });
    const admin = { actorId: 'bench', actorRole: 'admin' };
    const site = await devices.addSite({ name: 'Bench' }, admin);
    await devices.addUnit({ site: site.id, kind: 'biodigester', name: 'D' }, admin);
    const app = await buildApp({
      logger,
      authenticator: createAdminTokenAuthenticator(TOKEN),
      https: {
        key: ca.server.privateKeyPem,
        cert: `${ca.server.certPem.trim()}\n${ca.issuing.certPem}`,
      },
      routes: [
        {
          plugin: pkiRoutes({
            pki,
            ca,
            scoped: scopedServices(db, (tx) =>
              createPki({ db: tx, ca, audit, config: pkiConfig, brokerUrl: '' }),
            ),
            // One address enrols the whole fleet here: the per-address throttle is not what is measured.
            enrolment: {
              audit,
              limits: { maxAttemptsPerAddress: 1e9, maxFailuresPerAddress: 1e9, windowMs: 60_000 },
            },
          }),
        },
        {
          plugin: deviceRoutes({
            devices: scopedServices(db, (tx) => createDeviceService({ db: tx, audit })),
          }),
        },
      ],
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const api = createApiClient({
      baseUrl: `https://localhost:${(app.server.address() as AddressInfo).port}`,
      token: TOKEN,
      ca: ca.rootCertPem,
    });

    // Key and CSR alone, as the device makes them (the part that differs most between the types).
    const keyCost: Record<string, number> = {};
    for (const t of types) {
      const n = t === 'ec' ? 200 : 20;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) deviceKeyAndCsr(`bd-keycost-${i}`, t);
      keyCost[t] = (performance.now() - t0) / n;
    }

    const enrolled = new Map<DeviceKeyType, DeviceIdentity[]>(types.map((t) => [t, []]));
    const enrolMs = new Map<DeviceKeyType, number>(types.map((t) => [t, 0]));
    /** CPU of this process (the API and the simulated devices; PostgreSQL is another process): steadier than wall time on a shared machine. */
    const enrolCpuUs = new Map<DeviceKeyType, number>(types.map((t) => [t, 0]));
    const perRound = Math.ceil(devicesPerType / rounds);
    for (let r = 0; r < rounds; r++) {
      for (const t of types) {
        const from = r * perRound;
        const ids = Array.from(
          { length: Math.max(0, Math.min(perRound, devicesPerType - from)) },
          (_, i) => `bd-enrol-${t}-${from + i}`,
        );
        let next = 0;
        const t0 = performance.now();
        const cpu0 = process.cpuUsage();
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next < ids.length) {
              const id = ids[next++]!;
              const deviceDir = path.join(dir, 'sim', id);
              await mkdir(deviceDir, { recursive: true });
              enrolled
                .get(t)!
                .push(
                  await loadOrEnrol(
                    deviceDir,
                    id,
                    'biodigester',
                    { site: 'Bench', unit: 'D' },
                    api,
                    t,
                  ),
                );
            }
          }),
        );
        const ms = performance.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        enrolMs.set(t, enrolMs.get(t)! + ms);
        enrolCpuUs.set(t, enrolCpuUs.get(t)! + cpu.user + cpu.system);
        process.stdout.write(
          `round ${r + 1} ${t}: ${ids.length} devices enrolled in ${fmt(ms / 1000, 1)} s, ${fmt((cpu.user + cpu.system) / 1000 / Math.max(1, ids.length), 1)} ms CPU each (load average ${os.loadavg()[0]!.toFixed(1)})\n`,
        );
      }
    }
    await app.close();

    const tlsMaterial = {
      key: ca.server.privateKeyPem,
      cert: `${ca.server.certPem.trim()}\n${ca.issuing.certPem}`,
      ca: ca.caPems,
      crl: [(await pki.crl()).pem, ca.rootCrlPem!],
    };
    const broker = await createBroker({
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
      tls: tlsMaterial,
      identity: pki,
      securityEvents: createSecurityEvents({
        audit,
        logger,
        config: { windowMs: 60_000, maxKeys: 1000 },
      }),
      presence: createPresence({ pool, logger }),
    });
    const { port } = await broker.listen({
      handlers: { telemetry: { callback: (_session, _message, done) => done(null) } },
    });
    const hs = new Map<
      string,
      { completed: number; ms: number; cpuUs: number; p50: number[]; p99: number[]; errors: number }
    >();
    for (let r = 0; r < Math.max(2, Math.ceil(rounds / 2)); r++) {
      for (const mode of ['tls', 'connect'] as const) {
        for (const t of types) {
          const spec: HandshakeSpec = {
            port,
            ca: ca.rootCertPem,
            devices: enrolled
              .get(t)!
              .slice(0, handshakeWorkers)
              .map((d) => ({ id: d.id, key: d.key, cert: d.cert })),
            durationMs: handshakeSeconds * 1000,
            mode,
          };
          const cpu = process.cpuUsage();
          const res = await runHandshakes(dir, spec);
          const used = process.cpuUsage(cpu);
          const key = `${mode}\t${t}`;
          const acc = hs.get(key) ?? { completed: 0, ms: 0, cpuUs: 0, p50: [], p99: [], errors: 0 };
          acc.completed += res.completed;
          acc.ms += res.durationMs;
          acc.cpuUs += used.user + used.system;
          acc.p50.push(res.p50Ms);
          acc.p99.push(res.p99Ms);
          acc.errors += Object.values(res.errors).reduce((a, b) => a + b, 0);
          hs.set(key, acc);
          process.stdout.write(
            `handshakes ${mode} ${t}: ${fmt(res.completed / (res.durationMs / 1000))}/s, gateway CPU ${fmt((used.user + used.system) / Math.max(1, res.completed) / 1000, 2)} ms each${Object.keys(res.errors).length ? `, errors ${JSON.stringify(res.errors)}` : ''} (load average ${os.loadavg()[0]!.toFixed(1)})\n`,
          );
        }
      }
    }
    await broker.close();

    process.stdout.write(
      `\ndatabase: ${server.source}; ${os.cpus().length} cores; Node ${process.version}; load average ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}\n`,
    );
    process.stdout.write(
      `enrolment (${devicesPerType} devices per type, ${rounds} alternating rounds, ${concurrency} at a time):\n`,
    );
    for (const t of types) {
      const ms = enrolMs.get(t)!;
      process.stdout.write(
        `  ${t.padEnd(4)} ${fmt(ms / 1000, 1).padStart(8)} s  ${fmt(devicesPerType / (ms / 1000), 1).padStart(7)} devices/s  CPU (API + devices) ${fmt(enrolCpuUs.get(t)! / 1e6, 1)} s, ${fmt(enrolCpuUs.get(t)! / 1000 / devicesPerType, 1)} ms each  key+CSR ${fmt(keyCost[t]!, 2)} ms each\n`,
      );
    }
    if (types.length === 2)
      process.stdout.write(
        `  rsa/ec time ratio: ${fmt(enrolMs.get('rsa')! / enrolMs.get('ec')!, 2)}\n`,
      );
    process.stdout.write(
      `handshakes at the gateway (${handshakeWorkers} devices reconnecting one after the other, ${handshakeSeconds} s per run):\n`,
    );
    for (const mode of ['tls', 'connect'] as const) {
      for (const t of types) {
        const a = hs.get(`${mode}\t${t}`)!;
        const median = (xs: number[]): number =>
          [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
        process.stdout.write(
          `  ${mode.padEnd(8)} ${t.padEnd(4)} ${fmt(a.completed / (a.ms / 1000)).padStart(6)}/s  gateway CPU ${fmt(a.cpuUs / Math.max(1, a.completed) / 1000, 2)} ms each  p50 ${fmt(median(a.p50), 1)} ms  p99 ${fmt(median(a.p99), 1)} ms  errors ${a.errors}\n`,
        );
      }
      if (types.length === 2) {
        const ec = hs.get(`${mode}\tec`)!;
        const rsa = hs.get(`${mode}\trsa`)!;
        process.stdout.write(
          `  ${mode.padEnd(8)} ec/rsa rate ratio ${fmt(ec.completed / ec.ms / (rsa.completed / rsa.ms), 2)}, gateway CPU per handshake ec/rsa ${fmt(ec.cpuUs / ec.completed / (rsa.cpuUs / rsa.completed), 2)}\n`,
        );
      }
    }
    await database.close();
  } finally {
    // Pools of the presence writer and security events see the server go away: expected, not news.
    logger.level = 'error';
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
