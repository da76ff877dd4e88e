import path from 'node:path';
import { createAuditLog, createSecurityEvents, loadOrCreateAuditSigner } from '../audit/index.ts';
import {
  connectClusterStore,
  createBroker,
  createPresence,
  loadOrCreateTicketKeys,
  type Broker,
} from '../broker/index.ts';
import type { Config } from '../config/index.ts';
import { createDeviceEvents } from '../devices/device-events.ts';
import { createStateHandler } from '../devices/state-handler.ts';
import { createPki, createRenewalHandler, loadOrCreateCa } from '../provisioning/index.ts';
import { createIngest } from '../ingest/index.ts';
import { createAlertService } from '../dashboards/alert-service.ts';
import { createDashboardQueries } from '../dashboards/dashboard-repo.ts';
import { createWebhookDispatcher } from '../dashboards/webhook.ts';
import { createDeviceConfigRuntime } from '../device-config/index.ts';
import { createNotifications } from '../notifications/notification-runtime.ts';
import { createFirmwareDownloadServer } from '../firmware/download-server.ts';
import { createFirmwareService } from '../firmware/firmware-service.ts';
import { loadOrCreateSigner } from '../firmware/signing.ts';
import { startOperatorApi } from './api-runtime.ts';
import { openCluster, runAlertsOnLeader, runFirmwareOnLeader } from './cluster.ts';
import { startHealthServer } from './health-server.ts';
import { noBrokerPublisher, openReadDatabase } from './role-fns.ts';
import { gatewayRoutes } from './gateway-routes.ts';
import { registerGatewayMetrics } from './gateway-metrics.ts';
import {
  ingestCanWrite,
  openDatabase,
  openIngestDatabase,
  openSecurityEventsDatabase,
  startTimeseriesMaintenance,
} from './database.ts';
import { createLifecycle, stopOnSignals, type Lifecycle } from './lifecycle.ts';
import type { Logger } from 'pino';
import { createLogger } from './logger.ts';
import { loadOrCreateMrvSigner } from '../mrv/index.ts';
import { databaseAnswers } from '../db/health.ts';

/**
 * The composition root: builds every component from the config, in dependency order, and
 * registers each one's stop with the lifecycle so that shutdown runs in the reverse order
 * (MQTT listener, HTTP, pool, embedded database). `config.role` says what this node runs
 * (docs/operations.md, "Running several nodes"): `gateway` the broker, ingest and firmware
 * downloads (with /readyz on HTTPS_PORT), `api` the operator API and dashboards, `all` both.
 */
export interface Running {
  logger: Logger;
  lifecycle: Lifecycle;
  /** Undefined on a `--role api` node. */
  broker: Broker | undefined;
  urls: { api: string; mqtt: string };
}

export async function start(config: Config): Promise<Running> {
  const logger = createLogger(config.log);
  const lifecycle = createLifecycle(logger);
  stopOnSignals(lifecycle, logger);
  const runsGateway = config.role !== 'api';
  const runsApi = config.role !== 'gateway';
  try {
    const rt = await openDatabase(config, logger, lifecycle);
    const { db, pool } = rt.database;
    startTimeseriesMaintenance(rt, {
      rawRetentionDays: config.db.rawRetentionDays,
      logger: logger.child({ component: 'timeseries' }),
      lifecycle,
    });
    const host = config.publicHostname;
    const apiUrl = `https://${host}:${config.https.port}`;
    const mqttUrl = `mqtts://${host}:${config.mqtt.port}`;

    const ca = await loadOrCreateCa({
      dir: config.pki.dir,
      passphrase: config.pki.passphrase,
      serverNames: [...new Set([host, 'localhost', '127.0.0.1', '::1'])],
      serverCertDays: config.pki.serverCertDays,
      logger: logger.child({ component: 'pki' }),
    });
    // Every audit entry is signed with a key kept beside the CA's, never in the database.
    const auditSigner = await loadOrCreateAuditSigner({
      dir: config.pki.dir,
      passphrase: ca.keyPassphrase,
    });
    const audit = createAuditLog({ db, signer: auditSigner });
    const events = createDeviceEvents({
      url: rt.url,
      logger: logger.child({ component: 'device-events' }),
    });
    lifecycle.onStop('device-events', () => events.close());
    await events.ready;
    const pki = createPki({
      db,
      ca,
      audit,
      config: config.pki,
      brokerUrl: mqttUrl,
      crlUrl: `${apiUrl}/api/v1/pki/crl.der`,
    });
    events.on('certificate_revoked', () => pki.invalidateCrl());
    // Security events: aggregated, queued, and written over connections of their own, so that a
    // flood of refusals never takes a connection a CONNECT, ingest or the API needs.
    const securityDb = openSecurityEventsDatabase(rt, logger, lifecycle);
    const securityEvents = createSecurityEvents({
      audit: createAuditLog({ db: securityDb.db, signer: auditSigner }),
      logger: logger.child({ component: 'security-events' }),
      config: config.securityEvents,
      deviceOfSerial: async (serial) => (await pki.connectionIdentity(serial))?.deviceId,
    });
    lifecycle.onStop('security-events', () => securityEvents.stop());
    // (Registered before the broker's own listener: it re-reads the CRL after this.)
    events.on('resync', () => pki.invalidateCrl());
    const retire = setInterval(() => {
      pki
        .retireSuperseded()
        .catch((err: unknown) => logger.error({ err }, 'retiring superseded certificates failed'));
    }, 5 * 60_000);
    retire.unref();
    lifecycle.onStop('pki-rotation', () => clearInterval(retire));

    // Dashboards: live updates and alerts are fed by ingest (after commit) and broker presence,
    // on this node and (over the cluster bus) on the others; alerts run on one node (ADR 0011).
    const cluster = await openCluster({ url: rt.url, pool, config, logger, lifecycle });
    const { hub } = cluster;

    // The broker first: what answers devices (ingest, renewal, firmware) is built from its
    // publisher and backpressure, and handed to it in listen() below.
    // Node checks CRLs for every certificate of the chain once one is set: issuing CA's and root's.
    const tlsCrls = async (): Promise<string[] | undefined> =>
      ca.rootCrlPem ? [(await pki.crl()).pem, ca.rootCrlPem] : undefined;
    if (!ca.rootCrlPem)
      logger.warn(
        'no root CRL (imported CA without root.crl): revocation is enforced from the registry only, not in the TLS handshake',
      );
    const brokerLogger = logger.child({ component: 'broker' });
    const broker = runsGateway
      ? await createBroker({
          config: config.mqtt,
          logger: brokerLogger,
          // Session tickets that survive a restart: devices resume instead of a full handshake (broker/tls.ts).
          tls: {
            key: ca.server.privateKeyPem,
            cert: `${ca.server.certPem.trim()}\n${ca.issuing.certPem}`,
            ca: ca.caPems,
            crl: await tlsCrls(),
            ticketKeys: loadOrCreateTicketKeys(path.join(config.pki.dir, 'tls-ticket.keys')),
          },
          crl: tlsCrls,
          identity: pki,
          events,
          securityEvents,
          // Several nodes on one Redis (ADR 0010), or one node in memory without REDIS_URL.
          cluster: config.cluster
            ? await connectClusterStore({
                config: config.cluster,
                logger: brokerLogger,
                concurrency: 100,
              })
            : undefined,
          presence: createPresence({
            pool,
            logger: brokerLogger,
            clustered: config.cluster !== undefined,
            onChange: (c) =>
              hub.publish({
                type: 'device',
                device: {
                  id: c.deviceId,
                  unitId: c.unitId,
                  online: c.online,
                  at: c.at.toISOString(),
                },
              }),
          }),
        })
      : undefined;
    // Closes Aedes if start-up fails before the listener is up (a second close is a no-op).
    if (broker) lifecycle.onStop('mqtt-broker', () => broker.close());
    // An api node has no broker: what would answer a device from there has nobody to reach.
    const publisher = broker?.publisher ?? noBrokerPublisher(logger);

    // Firmware: a signing key of its own next to the CA, manifests over MQTT, downloads over mTLS.
    const firmware = createFirmwareService({
      pool,
      audit,
      securityEvents,
      signer: await loadOrCreateSigner({ dir: config.pki.dir, passphrase: ca.keyPassphrase }),
      publisher,
      config: {
        ...config.firmware,
        downloadBaseUrl: `https://${host}:${config.firmware.devicePort}`,
      },
      logger: logger.child({ component: 'firmware' }),
    });
    // Rollout waves from the firmware leader only; any node's API asks it to tick (ADR 0011).
    const requestFirmwareTick = runFirmwareOnLeader(cluster, {
      firmware,
      tickMs: config.firmware.tickMs,
      logger,
      lifecycle,
    });

    // Remote configuration and commands: desired state in PostgreSQL, sent at subscribe and on change (ADR 0013).
    // Delivered by gateway nodes only (an api node has no device to send to); every gateway
    // hears a change (NOTIFY), so a device may get one twice and de-duplicates by version and id.
    const deviceConfig = broker
      ? createDeviceConfigRuntime({
          db,
          audit,
          publisher: broker.publisher,
          events,
          logger: logger.child({ component: 'device-config' }),
          lifecycle,
        })
      : undefined;

    const { webhookUrl, webhookSecret } = config.alerts;
    // Every node sends from the outbox: rows are claimed FOR UPDATE SKIP LOCKED, each sent once.
    const webhook =
      webhookUrl && webhookSecret
        ? createWebhookDispatcher({
            pool,
            logger: logger.child({ component: 'alert-webhook' }),
            url: webhookUrl,
            secret: webhookSecret,
          })
        : undefined;
    if (webhook) lifecycle.onStop('alert-webhook', () => webhook.stop());
    const notifications = createNotifications({
      config: config.notifications,
      timeZone: config.dashboards.timeZone,
      baseUrl: apiUrl,
      publicHostname: host,
      pool,
      logger: logger.child({ component: 'notifications' }),
    });
    lifecycle.onStop('notifications', () => notifications.stop());
    const alerts = createAlertService({
      pool,
      logger: logger.child({ component: 'alerts' }),
      hub,
      notify: webhook !== undefined,
      onOutbox: () => webhook?.kick(),
      notifications: notifications.outbox,
    });
    await alerts.ensureDefaults();
    const leaderAlerts = runAlertsOnLeader(cluster, {
      alerts,
      sweepMs: config.alerts.sweepMs,
      logger,
      lifecycle,
    });

    // Ingest on every node: devices' readings on a gateway, quarantine replays on an api node.
    const ingestDb = await openIngestDatabase(config, rt, logger, lifecycle);
    const ingest = createIngest({
      pool: ingestDb.pool,
      logger: logger.child({ component: 'ingest' }),
      config: config.ingest,
      publisher,
      backpressure: broker?.backpressure,
      onStored: (rows) => {
        hub.stored(rows);
        leaderAlerts.stored(rows);
      },
    });
    lifecycle.onStop('ingest-flush', () => ingest.stop());
    events.on('sequence_reset', (e) => ingest.resetSequence(e.deviceId));
    const tls = {
      key: ca.server.privateKeyPem,
      cert: `${ca.server.certPem.trim()}\n${ca.issuing.certPem}`,
    };
    const probes = [
      { name: 'ingest', check: () => ingestCanWrite(ingestDb.pool) },
      // Without LISTEN a revocation would only reach live sessions at the next revalidation.
      { name: 'device-events', check: () => Promise.resolve(events.listening()) },
      // Without it live pages miss other nodes' readings and the firmware leader misses ticks.
      { name: 'cluster-bus', check: () => Promise.resolve(cluster.bus.listening()) },
      ...(broker ? [{ name: 'broker', check: () => Promise.resolve(broker.listening()) }] : []),
      // Clustered brokers (REDIS_URL): degraded, not down, while Redis is away (ADR 0010).
      ...(broker && config.cluster
        ? [{ name: 'redis', check: () => Promise.resolve(broker.clusterHealthy()) }]
        : []),
    ];
    if (runsApi) {
      // MRV reports: a signing key of its own beside the CA's (mrv/mrv-signer.ts), public at /.well-known/thamani-mrv-key.
      const mrvSigner = await loadOrCreateMrvSigner({
        dir: config.pki.dir,
        passphrase: ca.keyPassphrase,
      });
      const readDb = await openReadDatabase(config, logger, lifecycle);
      const api = await startOperatorApi(
        config,
        rt,
        { logger, lifecycle },
        {
          auditSigner,
          tls,
          probes,
          // The operator API's audit (checked per request by its audit guard) for the features' routes.
          routes: gatewayRoutes({
            pki,
            ca,
            ingest,
            pkiConfig: config.pki,
            enrolmentLimits: config.enrolment,
            brokerUrl: mqttUrl,
            crlUrl: `${apiUrl}/api/v1/pki/crl.der`,
            dashboards: {
              queries: createDashboardQueries({
                mode: rt.timeseries.mode,
                timeZone: config.dashboards.timeZone,
              }),
              hub,
              // A rule changed here reaches the alert leader, wherever it runs.
              alerts: { invalidateRules: (tx) => leaderAlerts.rulesChanged(tx) },
              timeZone: config.dashboards.timeZone,
              readDb: readDb?.db,
            },
            firmware: {
              service: { ...firmware, tick: requestFirmwareTick },
              maxImageBytes: config.firmware.maxImageBytes,
            },
            mrv: { signer: mrvSigner },
          }),
        },
      );
      registerGatewayMetrics(api.metrics.registry, { broker, ingest, securityEvents });
    } else {
      const health = await startHealthServer({
        host: config.https.host,
        port: config.https.port,
        tls,
        probes: [{ name: 'database', check: () => databaseAnswers(pool) }, ...probes],
        logger,
      });
      lifecycle.onStop('health', () => health.close());
    }

    if (broker) {
      await broker.listen({
        handlers: {
          telemetry: ingest.handleTelemetry,
          'cert/csr': createRenewalHandler({
            pki,
            publisher: broker.publisher,
            logger: brokerLogger,
          }),
          state: createStateHandler({
            pool,
            publisher: broker.publisher,
            onFirmwareReport: (deviceId, report) => firmware.report(deviceId, report),
          }),
          ...deviceConfig?.handlers,
        },
        // A message the gateway fails on is kept as INTERNAL_REJECT, acknowledged, explained (broker/input-guard.ts).
        internalReject: ingest.rejectInternal,
        // A manifest the broker lost (kept in memory for an offline device) goes out again.
        // A command is `sent` once the device acknowledged it, not when it was published.
        onDelivered: (deviceId, suffix, payload) =>
          deviceConfig?.delivery.onDelivered(deviceId, suffix, payload),
        onSubscribed: (deviceId, suffixes) => {
          deviceConfig?.delivery.onSubscribed(deviceId, suffixes);
          if (suffixes.includes('firmware/manifest'))
            firmware
              .resend(deviceId)
              .catch((err: unknown) =>
                logger.error({ err, deviceId }, 'could not send pending firmware manifests again'),
              );
        },
      });
      lifecycle.onStop('mqtt', () => broker.close());
      const downloads = createFirmwareDownloadServer({
        tls: { ...tls, ca: ca.caPems, crl: await tlsCrls() },
        crl: tlsCrls,
        identity: pki,
        firmware,
        securityEvents,
        logger: logger.child({ component: 'firmware-download' }),
      });
      const refreshDownloadCrl = (): void =>
        void downloads
          .refreshCrl()
          .catch((err: unknown) => logger.warn({ err }, 'firmware download CRL refresh failed'));
      events.on('certificate_revoked', refreshDownloadCrl);
      events.on('resync', refreshDownloadCrl);
      await downloads.listen(config.firmware.devicePort, config.mqtt.host);
      lifecycle.onStop('firmware-download', () => downloads.close());
    }
    void requestFirmwareTick();

    logger.info(
      {
        role: config.role,
        ...(runsApi ? { api: `${apiUrl}/api/v1` } : { health: `${apiUrl}/readyz` }),
        ...(runsGateway
          ? {
              mqtt: mqttUrl,
              firmwareDownloads: `https://${host}:${config.firmware.devicePort}`,
            }
          : {}),
        caCertificate: path.join(config.pki.dir, 'root.crt'),
        database: rt.embedded
          ? `embedded PostgreSQL on 127.0.0.1:${config.db.embeddedPort} (data in ${config.dataDir}/pg)`
          : 'DATABASE_URL',
        timeseries: rt.timeseries.mode,
      },
      runsApi
        ? `Thamani IoT is up: dashboards at ${apiUrl}/ . Sign in with the setup link above (first start), then \`npx thamani site add "My School"\` (README, "Enrol a device"). Ctrl-C stops.`
        : 'Thamani IoT gateway node is up (--role gateway: broker, ingest, firmware downloads). Ctrl-C stops.',
    );
    return { logger, lifecycle, broker, urls: { api: apiUrl, mqtt: mqttUrl } };
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    await lifecycle.stop('start-up failed');
    throw err;
  }
}
