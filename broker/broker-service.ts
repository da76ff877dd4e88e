import { Aedes, type AedesOptions, type Client } from 'aedes';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../app/logger.ts';
import { ConnectRefused } from './broker-errors.ts';
import { decideConnect, normaliseFingerprint, normaliseSerial, type ConnectionIdentity, type ConnectLimits } from './identity-fns.ts';
import { GuardedConnection } from './packet-guard.ts';
import { createTelemetryRouting } from './telemetry-routing.ts';
import type { Presence } from './presence.ts';
import { TokenBucket } from './rate-limiter.ts';
import type { SecurityEvents } from './security-events.ts';
import { InOrder } from './in-order.ts';
import { Pacer } from './pacer.ts';
import { tlsServerOptions, type BrokerTlsMaterial } from './tls.ts';
import { authorizeDevicePublish, authorizeDeviceSubscribe, mayForward } from './topic-policy.ts';
import type { DeviceSession, DownstreamPublisher, UpstreamCallbackHandler, UpstreamHandler, UpstreamPublish, UpstreamSuffix } from './types.ts';

export interface BrokerConfig extends ConnectLimits {
  host: string;
  port: number;
  maxPacketBytes: number;
  maxConnections: number;
  connectTimeoutMs: number;
  ratePerSecond: number;
  rateBurst: number;
  /** A publish that would have to wait longer than this for its token is refused (connection closed). */
  rateMaxWaitMs: number;
  /** How often live sessions are re-checked against the registry (safety net behind the events). */
  revalidateIntervalMs: number;
}

export interface DeviceEventSource {
  on(event: 'certificate_revoked', listener: (e: { serial: string; deviceId: string }) => void): unknown;
  on(event: 'device_status', listener: (e: { deviceId: string; status: string }) => void): unknown;
}

export interface BrokerDeps {
  config: BrokerConfig;
  logger: Logger;
  tls: BrokerTlsMaterial;
  /** Current CRL PEM, re-read when a certificate is revoked. */
  crl?: () => Promise<string[] | undefined>;
  identity: {
    connectionIdentity(serialHex: string): Promise<ConnectionIdentity | undefined>;
    markConnected(deviceId: string): Promise<void>;
  };
  events?: DeviceEventSource;
  securityEvents: SecurityEvents;
  presence?: Presence;
  handlers: Partial<Record<UpstreamSuffix, UpstreamHandler | UpstreamCallbackHandler>>;
  /** A device's subscriptions were granted (suffixes of its own topics, e.g. `firmware/manifest`). */
  onSubscribed?: (deviceId: string, suffixes: string[]) => void;
}

interface SessionState {
  session: DeviceSession;
  bucket: TokenBucket;
  connectedAt: Date;
  rateLimitedLogged: boolean;
  /** Outcomes of its publishes, released in the order they arrived (PUBACKs in order). */
  acks: InOrder;
  /** Its publishes that wait for a rate-limit token, handled in the order they arrived. */
  pacer: Pacer;
}

export interface ConnectedClient {
  deviceId: string;
  certSerial: string;
  remoteAddress: string | undefined;
  connectedAt: string;
}

export async function createBroker(deps: BrokerDeps) {
  const { config, logger } = deps;
  const sessions = new Map<Client, SessionState>();
  const liveByDevice = new Map<string, Client>();
  const connectPackets = new WeakMap<Client, { keepalive: number; will?: { topic: string } }>();
  const guards = new Set<GuardedConnection>();
  let holding = false;
  const counters = { connectionsRefused: 0, publishesDenied: 0, subscribesDenied: 0, packetsTooLarge: 0, rateLimited: 0, cutOffs: 0 };

  const socketOf = (client: Client): tls.TLSSocket | undefined => (client.conn instanceof GuardedConnection ? client.conn.socket : undefined);
  const security = (action: string, client: Client | null, target: string, details: Record<string, unknown>): void => {
    const state = client ? sessions.get(client) : undefined;
    const socket = client ? socketOf(client) : undefined;
    deps.securityEvents.record({
      action,
      deviceId: state?.session.deviceId,
      certSerial: state?.session.certSerial ?? (socket ? peerSerial(socket) : undefined),
      ip: socket?.remoteAddress,
      target,
      details,
    });
  };

  // Aedes' own mq and persistence, minus the routing of telemetry nobody can subscribe to.
  const routing = createTelemetryRouting({ concurrency: 100 });
  const opts: AedesOptions = {
    mq: routing.mq,
    persistence: routing.persistence,
    connectTimeout: config.connectTimeoutMs,
    keepaliveLimit: config.keepaliveMaxSeconds,
    maxClientsIdLength: config.maxClientIdLength,
    preConnect(client, packet, done) {
      connectPackets.set(client, { keepalive: packet.keepalive ?? 0, ...(packet.will ? { will: { topic: packet.will.topic } } : {}) });
      done(null, true);
    },
    authenticate(client, username, password, done) {
      authenticate(client, username !== undefined || password !== undefined).then(
        () => done(null, true),
        (err: unknown) => {
          const refusal = err instanceof ConnectRefused ? err : new ConnectRefused('registry_unavailable');
          if (!(err instanceof ConnectRefused)) logger.error({ err }, 'registry lookup failed during CONNECT');
          counters.connectionsRefused++;
          security('security.connect_refused', client, `clientId:${client.id}`, { reason: refusal.reason, returnCode: refusal.returnCode });
          done(refusal, null);
        },
      );
    },
    authorizePublish(client, packet, done) {
      const state = client ? sessions.get(client) : undefined;
      if (!client || !state) return done(new Error('publish from an unauthenticated client'));
      // Every outcome, refusals too, waits for those of the client's earlier publishes.
      const acks = state.acks;
      const ticket = acks.open(done);
      const decision = authorizeDevicePublish(state.session.deviceId, packet);
      if (!decision.ok) {
        counters.publishesDenied++;
        security('security.publish_denied', client, packet.topic, { reason: decision.reason, qos: packet.qos, retain: packet.retain });
        return acks.settle(ticket, new Error(`publish refused: ${decision.reason}`));
      }
      const handler = deps.handlers[decision.suffix];
      if (!handler) return acks.settle(ticket, new Error(`no handler for ${decision.suffix}`));
      const wait = state.bucket.take();
      if (wait > config.rateMaxWaitMs) {
        state.bucket.refund();
        counters.rateLimited++;
        security('security.rate_limited', client, packet.topic, { waitMs: Math.round(wait), ratePerSecond: config.ratePerSecond });
        return acks.settle(ticket, new Error('publish rate exceeded'));
      }
      if (wait > 0 && !state.rateLimitedLogged) {
        state.rateLimitedLogged = true;
        logger.warn({ deviceId: state.session.deviceId, waitMs: Math.round(wait) }, 'device over its publish rate: acknowledgements slowed');
      }
      const message = { topic: packet.topic, suffix: decision.suffix, payload: packet.payload as Buffer, qos: packet.qos, receivedAt: new Date() };
      const deviceId = state.session.deviceId;
      let called = false;
      const finished = (err: unknown): void => {
        // A handler that calls back twice (or calls back, then throws) must not answer twice.
        if (called) return void logger.error({ err, deviceId, topic: packet.topic }, 'upstream handler completed twice; ignored');
        called = true;
        if (!err) return acks.settle(ticket, null);
        logger.warn({ err, deviceId, topic: packet.topic }, 'upstream handler failed: no acknowledgement, closing');
        acks.settle(ticket, err instanceof Error ? err : new Error(`upstream handler failed: ${JSON.stringify(err)}`));
      };
      // Behind a wait, a publish joins the session's queue (broker/pacer.ts): its handler runs
      // after those of the publishes before it, never before.
      if (wait > 0 || state.pacer.waiting > 0) state.pacer.after(wait, () => runHandler(handler, state.session, message, finished));
      else runHandler(handler, state.session, message, finished);
    },
    authorizeSubscribe(client, sub, done) {
      const state = sessions.get(client);
      const decision = state ? authorizeDeviceSubscribe(state.session.deviceId, sub.topic) : ({ ok: false, reason: 'not_own_topic' } as const);
      if (!decision.ok) {
        counters.subscribesDenied++;
        security('security.subscribe_denied', client, sub.topic, { reason: decision.reason });
        return done(null, null); // SUBACK 0x80 for this filter [MQTT-3.9.3-2]; the session stays
      }
      done(null, { ...sub, qos: Math.min(sub.qos, 1) as 0 | 1 });
    },
    authorizeForward(client, packet) {
      const state = sessions.get(client);
      return state && mayForward(state.session.deviceId, packet.topic) ? packet : null;
    },
  };

  /** Hands a publish to its handler (a plain function: no closure per message on the hot path). */
  function runHandler(handler: UpstreamHandler | UpstreamCallbackHandler, session: DeviceSession, message: UpstreamPublish, finished: (err: unknown) => void): void {
    deps.presence?.seen(session.deviceId);
    if (typeof handler === 'function') {
      handler(session, message).then(() => finished(null), finished);
      return;
    }
    try {
      handler.callback(session, message, finished);
    } catch (err) {
      finished(err); // a bug in a handler costs its publish (no PUBACK), never the broker
    }
  }

  async function authenticate(client: Client, hasCredentials: boolean): Promise<void> {
    const socket = socketOf(client);
    const cert = socket?.getPeerCertificate();
    const cnRaw = cert && Object.keys(cert).length > 0 ? cert.subject?.CN : undefined;
    const certCn = Array.isArray(cnRaw) ? undefined : cnRaw;
    const packet = connectPackets.get(client);
    const serial = cert?.serialNumber ? normaliseSerial(cert.serialNumber) : undefined;
    const identity = certCn && serial && socket?.authorized ? await deps.identity.connectionIdentity(serial) : undefined;
    const refusal = decideConnect(
      { certCn: socket?.authorized ? certCn : undefined, clientId: client.id, hasCredentials, keepalive: packet?.keepalive ?? 0, will: packet?.will, now: new Date() },
      identity,
      config,
    );
    if (refusal || !identity || !serial || !cert) throw new ConnectRefused(refusal ?? 'unknown_certificate');
    if (identity.deviceStatus === 'pending') await deps.identity.markConnected(identity.deviceId);
    sessions.set(client, {
      session: {
        deviceId: identity.deviceId,
        unitId: identity.unitId,
        kind: identity.kind,
        certSerial: serial,
        certFingerprint: normaliseFingerprint(cert.fingerprint256),
        clientId: client.id,
        remoteAddress: socket?.remoteAddress,
      },
      bucket: new TokenBucket({ ratePerSecond: config.ratePerSecond, burst: config.rateBurst }),
      connectedAt: new Date(),
      rateLimitedLogged: false,
      acks: new InOrder(),
      pacer: new Pacer(),
    });
  }

  const aedes = await Aedes.createBroker(opts);
  aedes.on('clientReady', (client) => {
    const state = sessions.get(client);
    if (!state) return;
    liveByDevice.set(state.session.deviceId, client);
    deps.presence?.connected(state.session.deviceId);
    logger.info({ deviceId: state.session.deviceId, certSerial: state.session.certSerial, ip: state.session.remoteAddress }, 'device connected');
  });
  aedes.on('clientDisconnect', (client) => {
    const state = sessions.get(client);
    sessions.delete(client);
    if (!state) return;
    if (liveByDevice.get(state.session.deviceId) === client) {
      liveByDevice.delete(state.session.deviceId);
      deps.presence?.disconnected(state.session.deviceId);
    }
    logger.info({ deviceId: state.session.deviceId }, 'device disconnected');
  });
  aedes.on('subscribe', (subs, client) => {
    const state = client ? sessions.get(client) : undefined;
    if (!state || !deps.onSubscribed) return;
    const prefix = `devices/${state.session.deviceId}/`;
    // Aedes has stored the subscriptions by now: a message published from here on is delivered.
    // A refused filter comes with qos 128 (its SUBACK code), whatever the typings say.
    const suffixes = subs.filter((s) => (s.qos as number) !== 128 && s.topic.startsWith(prefix)).map((s) => s.topic.slice(prefix.length));
    if (suffixes.length === 0) return;
    try {
      deps.onSubscribed(state.session.deviceId, suffixes);
    } catch (err) {
      logger.error({ err, deviceId: state.session.deviceId }, 'a subscription listener failed');
    }
  });
  aedes.on('clientError', (client, err) => logger.debug({ err, clientId: client.id }, 'client error'));
  aedes.on('connectionError', (_client, err) => logger.debug({ err }, 'connection error'));

  let tlsMaterial = deps.tls;
  const server = tls.createServer(tlsServerOptions(tlsMaterial), (socket) => {
    const guard = new GuardedConnection(socket, {
      maxPacketBytes: config.maxPacketBytes,
      onReject: (verdict) => {
        counters.packetsTooLarge++;
        const client = [...sessions.keys()].find((c) => c.conn === guard) ?? null;
        security('security.packet_rejected', client, verdict.reason, { declaredBytes: verdict.declared, maxPacketBytes: config.maxPacketBytes });
      },
    });
    guards.add(guard);
    guard.once('close', () => guards.delete(guard));
    if (holding) guard.hold();
    aedes.handle(guard);
  });
  server.maxConnections = config.maxConnections;
  server.on('tlsClientError', (err, socket) => logger.info({ err: err.message, ip: socket.remoteAddress }, 'TLS handshake refused'));

  function closeWhere(predicate: (s: SessionState) => boolean, why: string): number {
    let n = 0;
    for (const [client, state] of sessions) {
      if (!predicate(state)) continue;
      n++;
      counters.cutOffs++;
      logger.warn({ deviceId: state.session.deviceId, certSerial: state.session.certSerial, why }, 'cutting off device session');
      client.close();
    }
    return n;
  }

  async function refreshCrl(): Promise<void> {
    if (!deps.crl) return;
    tlsMaterial = { ...tlsMaterial, crl: await deps.crl() };
    server.setSecureContext(tlsServerOptions(tlsMaterial));
  }

  deps.events?.on('certificate_revoked', (e) => {
    const serial = normaliseSerial(e.serial);
    closeWhere((s) => s.session.certSerial === serial, 'certificate revoked');
    refreshCrl().catch((err: unknown) => logger.error({ err }, 'could not refresh the CRL'));
  });
  deps.events?.on('device_status', (e) => {
    if (e.status === 'suspended' || e.status === 'retired') closeWhere((s) => s.session.deviceId === e.deviceId, `device ${e.status}`);
  });

  // Safety net behind the events (a lost notification, a certificate expiring mid-session).
  const revalidate = async (): Promise<void> => {
    for (const [client, state] of [...sessions]) {
      const identity = await deps.identity.connectionIdentity(state.session.certSerial);
      const bad = !identity || identity.certStatus !== 'active' || identity.notAfter.getTime() <= Date.now() || identity.deviceStatus === 'suspended' || identity.deviceStatus === 'retired';
      if (bad && sessions.has(client)) {
        counters.cutOffs++;
        logger.warn({ deviceId: state.session.deviceId }, 'session no longer valid in the registry: closing');
        client.close();
      }
    }
  };
  const revalidateTimer = setInterval(() => {
    revalidate().catch((err: unknown) => logger.warn({ err }, 'revalidation failed'));
  }, config.revalidateIntervalMs);
  revalidateTimer.unref();

  const publisher: DownstreamPublisher = {
    publish(deviceId, suffix, payload, o) {
      return new Promise((resolve, reject) => {
        aedes.publish(
          { cmd: 'publish', topic: `devices/${deviceId}/${suffix}`, payload: typeof payload === 'string' ? Buffer.from(payload) : payload, qos: o?.qos ?? 1, retain: o?.retain ?? false, dup: false },
          (err) => (err ? reject(err) : resolve()),
        );
      });
    },
  };

  return {
    aedes,
    publisher,
    counters,
    async listen(): Promise<AddressInfo> {
      await deps.presence?.reset();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => resolve());
      });
      const address = server.address() as AddressInfo;
      logger.info({ host: address.address, port: address.port }, 'MQTT broker listening (mTLS)');
      return address;
    },
    listening: () => server.listening,
    clients(): ConnectedClient[] {
      return [...liveByDevice.values()].flatMap((client) => {
        const s = sessions.get(client);
        return s ? [{ deviceId: s.session.deviceId, certSerial: s.session.certSerial, remoteAddress: s.session.remoteAddress, connectedAt: s.connectedAt.toISOString() }] : [];
      });
    },
    disconnectCertificate: (serial: string) => closeWhere((s) => s.session.certSerial === normaliseSerial(serial), 'certificate revoked'),
    disconnectDevice: (deviceId: string) => closeWhere((s) => s.session.deviceId === deviceId, 'device disabled'),
    refreshCrl,
    /** Global backpressure from ingest: stop reading every device socket until release. */
    holdReading(): void {
      holding = true;
      for (const g of guards) g.hold();
    },
    releaseReading(): void {
      holding = false;
      for (const g of guards) g.release();
    },
    async close(): Promise<void> {
      clearInterval(revalidateTimer);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const client of sessions.keys()) client.close();
        for (const g of guards) g.destroy();
      });
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await deps.presence?.stop();
    },
  };
}

function peerSerial(socket: tls.TLSSocket): string | undefined {
  const cert = socket.getPeerCertificate();
  return cert?.serialNumber ? normaliseSerial(cert.serialNumber) : undefined;
}

export type Broker = Awaited<ReturnType<typeof createBroker>>;
