import { Aedes, type AedesOptions } from 'aedes';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { SecurityEvents } from '../audit/index.ts';
import type { ClusterStore } from './cluster.ts';
import { newBrokerCounters, type BrokerConfig, type BrokerRoutes } from './broker-context.ts';
import { createConnectHooks } from './connect-hooks.ts';
import { createDeviceListener } from './device-listener.ts';
import { DeviceLimits } from './device-limits.ts';
import type { ConnectionIdentity } from './identity-fns.ts';
import { createInputGuard } from './input-guard.ts';
import type { Presence } from './presence.ts';
import { createPublishHook } from './publish-hook.ts';
import { createRefusals } from './refusals.ts';
import { createRegistryCache } from './registry-cache.ts';
import { createSharedConnectLimits } from './shared-limits.ts';
import { createSessionControl, type DeviceEventSource } from './session-control.ts';
import { createSessionRegistry } from './sessions.ts';
import { createSubscribeHooks } from './subscribe-hooks.ts';
import { createTelemetryRouting } from './telemetry-routing.ts';
import type { BrokerTlsMaterial } from './tls.ts';
import type { DownstreamPublisher, UpstreamSuffix } from './types.ts';

export type { BrokerConfig, BrokerRoutes } from './broker-context.ts';
export type { ConnectedClient } from './sessions.ts';
export type { DeviceEventSource } from './session-control.ts';

export interface BrokerDeps {
  config: BrokerConfig;
  logger: Logger;
  tls: BrokerTlsMaterial;
  /** Current CRL PEM, re-read when a certificate is revoked. */
  crl?: () => Promise<string[] | undefined>;
  identity: {
    /** Many serials in one query: CONNECTs gathered in a storm, the revalidation sweep. */
    connectionIdentities(serialsHex: string[]): Promise<Map<string, ConnectionIdentity>>;
    markConnected(deviceId: string): Promise<void>;
  };
  events?: DeviceEventSource;
  securityEvents: Pick<SecurityEvents, 'record'>;
  presence?: Presence;
  /** Redis for mq and persistence when clustered (broker/cluster.ts); closed with the broker. */
  cluster?: Pick<ClusterStore, 'mq' | 'persistence' | 'close' | 'healthy'> &
    Partial<Pick<ClusterStore, 'redis'>>;
}

/**
 * The MQTT broker: Aedes behind our own gates, with the device policy in its hooks. The parts:
 * - sessions.ts: who is connected as which device;
 * - device-listener.ts: TCP admission, TLS verdict, packet guard (the way in);
 * - connect-hooks.ts, publish-hook.ts, subscribe-hooks.ts: the Aedes hooks;
 * - refusals.ts: security events for what the hooks refuse;
 * - session-control.ts: cut-offs on revocation or suspension, revalidation, CRL refresh.
 *
 * Built in two steps: `createBroker` gives the ports that consumers need (`publisher`,
 * `backpressure`); `listen(routes)` takes the consumers built from them and opens the port.
 */
export async function createBroker(deps: BrokerDeps) {
  const { config, logger } = deps;
  let routes: BrokerRoutes | undefined;
  const sessions = createSessionRegistry();
  const counters = newBrokerCounters();
  // Publish and CONNECT budgets per device id, kept across its connections (broker/device-limits.ts).
  const limits = new DeviceLimits({
    ratePerSecond: config.ratePerSecond,
    burst: config.rateBurst,
    floodCloseMs: config.rateFloodCloseMs,
    connectsPerWindow: config.connectsPerWindow,
    connectWindowMs: config.connectWindowMs,
    maxDevices: Math.max(10_000, 2 * config.maxConnections),
  });
  const guard = createInputGuard({ logger, record: () => routes?.internalReject });
  // Registry answers at CONNECT, gathered and kept until an event says otherwise (registry-cache.ts).
  const registry = createRegistryCache({
    lookup: deps.identity,
    ttlMs: config.revalidateIntervalMs,
  });
  const refusals = createRefusals({ securityEvents: deps.securityEvents, sessions, guard, logger });
  // Aedes takes connections from the listener, whose admission the CONNECT hook reports to: the
  // listener's `handle` is only called for a socket accepted after listen(), when aedes exists.
  const listener = createDeviceListener({
    config,
    logger,
    tls: deps.tls,
    counters,
    securityEvents: deps.securityEvents,
    refusals,
    guard,
    sessions,
    handle: (conn) => aedes.handle(conn),
  });
  const subscribeHooks = createSubscribeHooks({
    logger,
    sessions,
    counters,
    refusals,
    guard,
    onSubscribed: () => routes?.onSubscribed,
    onDelivered: () => routes?.onDelivered,
  });

  // Aedes' own mq and persistence (in memory, or on Redis when clustered: ADR 0010), minus the
  // routing of telemetry nobody can subscribe to.
  const routing = createTelemetryRouting({ concurrency: 100, store: deps.cluster });
  const opts: AedesOptions = {
    mq: routing.mq,
    persistence: routing.persistence,
    connectTimeout: config.connectTimeoutMs,
    // No keepaliveLimit: Aedes answers it with return code 6, which MQTT 3.1.1 does not define;
    // decideConnect refuses keepalive out of bounds with 2, as the device contract says.
    maxClientsIdLength: config.maxClientIdLength,
    // Every hook runs on device input: whatever throws in it is caught in it, so that a bug
    // costs one message or one connection, never the process (input-guard.ts).
    ...createConnectHooks({
      config,
      logger,
      identity: deps.identity,
      registry,
      sessions,
      limits,
      sharedLimits: deps.cluster?.redis
        ? createSharedConnectLimits({
            redis: deps.cluster.redis,
            connectsPerWindow: config.connectsPerWindow,
            connectWindowMs: config.connectWindowMs,
            logger,
          })
        : undefined,
      counters,
      refusals,
      admission: listener.admission,
    }),
    authorizePublish: createPublishHook({
      config,
      logger,
      sessions,
      limits,
      counters,
      refusals,
      guard,
      handlerFor: (suffix) => routes?.handlers[suffix as UpstreamSuffix],
      presence: deps.presence,
    }),
    authorizeSubscribe: subscribeHooks.authorizeSubscribe,
    authorizeForward: subscribeHooks.authorizeForward,
  };
  const aedes = await Aedes.createBroker(opts);
  aedes.on('clientReady', (client) => {
    const state = sessions.ready(client);
    if (!state) return;
    try {
      deps.presence?.connected(state.session.deviceId);
    } catch (err) {
      refusals.hookFailed('clientReady', client, err);
    }
    logger.info(
      {
        deviceId: state.session.deviceId,
        certSerial: state.session.certSerial,
        ip: state.session.remoteAddress,
      },
      'device connected',
    );
  });
  aedes.on('clientDisconnect', (client) => {
    const gone = sessions.remove(client);
    if (!gone) return;
    const { deviceId } = gone.state.session;
    if (gone.wasLive) {
      try {
        deps.presence?.disconnected(deviceId);
      } catch (err) {
        guard.hookFailed('clientDisconnect', deviceId, err);
      }
    }
    logger.info({ deviceId }, 'device disconnected');
  });
  aedes.on('subscribe', (subs, client) => subscribeHooks.subscribed(subs, client));
  aedes.on('ack', (packet, client) => subscribeHooks.acked(packet, client));
  aedes.on('clientError', (client, err) =>
    logger.debug({ err, clientId: client.id }, 'client error'),
  );
  aedes.on('connectionError', (_client, err) => logger.debug({ err }, 'connection error'));

  const control = createSessionControl({
    config,
    logger,
    sessions,
    counters,
    identity: deps.identity,
    registry,
    events: deps.events,
    crl: deps.crl,
    setCrl: listener.setCrl,
  });

  const publisher: DownstreamPublisher = {
    publish(deviceId, suffix, payload, o) {
      return new Promise((resolve, reject) => {
        aedes.publish(
          {
            cmd: 'publish',
            topic: `devices/${deviceId}/${suffix}`,
            payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
            qos: o?.qos ?? 1,
            retain: o?.retain ?? false,
            dup: false,
          },
          (err) => (err ? reject(err) : resolve()),
        );
      });
    },
  };

  let closing: Promise<void> | undefined;
  return {
    aedes,
    /** Server-to-device messages; usable before listen() (nobody is subscribed yet). */
    publisher,
    /** Global backpressure from ingest: stop reading every device socket until release. */
    backpressure: { hold: listener.hold, release: listener.release },
    counters,
    /** INTERNAL_REJECTs and hook failures, by topic suffix (or `hook:<name>`) and error class. */
    internalRejects: guard.counts,
    /** Opens the MQTT port with these routes behind it (once). */
    async listen(r: BrokerRoutes): Promise<AddressInfo> {
      if (routes) throw new Error('the broker is already listening');
      routes = r;
      await deps.presence?.reset();
      const address = await listener.listen();
      logger.info({ host: address.address, port: address.port }, 'MQTT broker listening (mTLS)');
      return address;
    },
    listening: listener.listening,
    /** Redis answers (always true for a broker in memory): for /readyz. */
    clusterHealthy: (): boolean => deps.cluster?.healthy() ?? true,
    /** Accepted sockets that have not sent CONNECT yet. */
    pendingConnections: listener.admission.pending,
    clients: sessions.connected,
    disconnectCertificate: control.disconnectCertificate,
    disconnectDevice: control.disconnectDevice,
    refreshCrl: control.refreshCrl,
    revalidateNow: control.revalidateNow,
    /** Stops accepting, closes every session, then Aedes and presence; a second call waits for the first. */
    close(): Promise<void> {
      closing ??= (async () => {
        control.stop();
        registry.stop();
        await listener.close(() => {
          for (const client of sessions.clients()) client.close();
        });
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        await deps.cluster?.close();
        await deps.presence?.stop();
      })();
      return closing;
    },
  };
}

export type Broker = Awaited<ReturnType<typeof createBroker>>;
