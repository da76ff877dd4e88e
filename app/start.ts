import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { buildApp } from '../api/app.ts';
import { createAuditLog } from '../audit/index.ts';
import { createAdminTokenAuthenticator } from '../auth/admin-token.ts';
import { createBroker, createPresence, createSecurityEvents, type Broker } from '../broker/index.ts';
import type { Config } from '../config/index.ts';
import { createDeviceEvents } from '../devices/device-events.ts';
import { deviceRoutes } from '../devices/device-routes.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { createStateHandler } from '../devices/state-handler.ts';
import { createPki, createRenewalHandler, loadOrCreateCa, pkiRoutes } from '../provisioning/index.ts';
import { createIngest, createQuarantineService, ingestRoutes } from '../ingest/index.ts';
import { openDatabase, startTimeseriesMaintenance } from './database.ts';
import { createLifecycle, stopOnSignals, type Lifecycle } from './lifecycle.ts';
import { createLogger, type Logger } from './logger.ts';

/**
 * The composition root: builds every component from the config, in dependency order, and
 * registers each one's stop with the lifecycle so that shutdown runs in the reverse order
 * (MQTT listener, HTTP, pool, embedded database).
 */
export interface Running {
  logger: Logger;
  lifecycle: Lifecycle;
  broker: Broker;
  urls: { api: string; mqtt: string };
}

async function adminToken(config: Config, logger: Logger): Promise<string> {
  if (config.adminToken) return config.adminToken;
  const file = path.join(config.dataDir, 'admin-token');
  const existing = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (existing) return existing.trim();
  const token = randomBytes(32).toString('base64url');
  await fs.mkdir(config.dataDir, { recursive: true });
  await fs.writeFile(file, `${token}\n`, { mode: 0o600 });
  logger.warn({ file }, 'DEVELOPMENT: generated an admin API token (THAMANI_ADMIN_TOKEN is not set)');
  return token;
}

export async function start(config: Config): Promise<Running> {
  const logger = createLogger(config.log);
  const lifecycle = createLifecycle(logger);
  stopOnSignals(lifecycle, logger);
  try {
    const rt = await openDatabase(config, logger, lifecycle);
    const { db, pool } = rt.database;
    startTimeseriesMaintenance(rt, { rawRetentionDays: config.db.rawRetentionDays, logger: logger.child({ component: 'timeseries' }), lifecycle });
    const audit = createAuditLog({ db });
    const host = config.publicHostname;
    const apiUrl = `https://${host}:${config.https.port}`;
    const mqttUrl = `mqtts://${host}:${config.mqtt.port}`;

    const ca = await loadOrCreateCa({ dir: config.pki.dir, passphrase: config.pki.passphrase, serverNames: [...new Set([host, 'localhost', '127.0.0.1', '::1'])], serverCertDays: config.pki.serverCertDays, logger: logger.child({ component: 'pki' }) });
    const events = createDeviceEvents({ url: rt.url, logger: logger.child({ component: 'device-events' }) });
    lifecycle.onStop('device-events', () => events.close());
    await events.ready;
    const pki = createPki({ db, ca, audit, config: config.pki, brokerUrl: mqttUrl, crlUrl: `${apiUrl}/api/v1/pki/crl.der` });
    events.on('certificate_revoked', () => pki.invalidateCrl());
    const devices = createDeviceService({ db, audit });
    const retire = setInterval(() => {
      pki.retireSuperseded().catch((err: unknown) => logger.error({ err }, 'retiring superseded certificates failed'));
    }, 5 * 60_000);
    retire.unref();
    lifecycle.onStop('pki-rotation', () => clearInterval(retire));

    // Handlers answer through the broker they are registered with; it exists by the time they run.
    const lazyPublisher = { publish: (...args: Parameters<Broker['publisher']['publish']>) => broker.publisher.publish(...args) };
    const ingest = createIngest({
      pool,
      logger: logger.child({ component: 'ingest' }),
      config: config.ingest,
      publisher: lazyPublisher,
      backpressure: { hold: () => broker.holdReading(), release: () => broker.releaseReading() },
    });
    lifecycle.onStop('ingest-flush', () => ingest.stop());
    const quarantine = createQuarantineService({ db, ingest, audit });
    const app = await buildApp({
      logger: logger.child({ component: 'api' }),
      authenticator: createAdminTokenAuthenticator(await adminToken(config, logger)),
      https: { key: ca.server.privateKeyPem, cert: `${ca.server.certPem.trim()}\n${ca.issuing.certPem}` },
      routes: [{ plugin: pkiRoutes({ pki, ca }) }, { plugin: deviceRoutes({ devices }) }, { plugin: ingestRoutes({ quarantine }) }],
    });
    await app.listen({ host: config.https.host, port: config.https.port });
    lifecycle.onStop('https', () => app.close());

    // Node checks CRLs for every certificate of the chain once one is set: issuing CA's and root's.
    const tlsCrls = async (): Promise<string[] | undefined> => (ca.rootCrlPem ? [(await pki.crl()).pem, ca.rootCrlPem] : undefined);
    if (!ca.rootCrlPem) logger.warn('no root CRL (imported CA without root.crl): revocation is enforced from the registry only, not in the TLS handshake');
    const brokerLogger = logger.child({ component: 'broker' });
    const broker = await createBroker({
      config: config.mqtt,
      logger: brokerLogger,
      tls: { key: ca.server.privateKeyPem, cert: `${ca.server.certPem.trim()}\n${ca.issuing.certPem}`, ca: ca.caPems, crl: await tlsCrls() },
      crl: tlsCrls,
      identity: pki,
      events,
      securityEvents: createSecurityEvents({ audit, logger: brokerLogger }),
      presence: createPresence({ pool, logger: brokerLogger }),
      handlers: {
        telemetry: ingest.handleTelemetry,
        'cert/csr': createRenewalHandler({ pki, publisher: lazyPublisher, logger: brokerLogger }),
        state: createStateHandler({ pool, publisher: lazyPublisher }),
      },
    });
    await broker.listen();
    lifecycle.onStop('mqtt', () => broker.close());

    logger.info(
      {
        api: `${apiUrl}/api/v1`,
        mqtt: mqttUrl,
        caCertificate: path.join(config.pki.dir, 'root.crt'),
        adminToken: config.adminToken ? 'THAMANI_ADMIN_TOKEN' : path.join(config.dataDir, 'admin-token'),
        database: rt.embedded ? `embedded PostgreSQL on 127.0.0.1:${config.db.embeddedPort} (data in ${config.dataDir}/pg)` : 'DATABASE_URL',
        timeseries: rt.timeseries.mode,
      },
      'Thamani IoT is up. Next: `npx thamani site add "My School"` (see README, "Enrol a device"). Ctrl-C stops.',
    );
    return { logger, lifecycle, broker, urls: { api: apiUrl, mqtt: mqttUrl } };
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    await lifecycle.stop('start-up failed');
    throw err;
  }
}
