import { Aedes, type AedesOptions, type Client } from 'aedes';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { createAdmission } from './admission.ts';
import { ConnectRefused, type ConnectRefusal } from './broker-errors.ts';
import { DeviceLimits } from './device-limits.ts';
import { decideConnect, decideProtocol, normaliseFingerprint, normaliseSerial, type ConnectionIdentity, type ConnectLimits } from './identity-fns.ts';
import { GuardedConnection } from './packet-guard.ts';
import { createInputGuard, errorClass, NotAcknowledged, type InternalRejectRecorder } from './input-guard.ts';
import { createTelemetryRouting } from './telemetry-routing.ts';
import { createRegistryCache, RegistryChanging } from './registry-cache.ts';
import { sessionsToClose } from './revalidation.ts';
import type { Presence } from './presence.ts';
import type { SecurityEvent, SecurityEvents } from '../audit/index.ts';
import { InOrder } from './in-order.ts';
import { Pacer } from './pacer.ts';
import { admitAuthorized, tlsServerOptions, type BrokerTlsMaterial } from './tls.ts';
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
  /** A device continuously over its rate for longer than this is flooding: connection closed, recorded. */
  rateFloodCloseMs: number;
  /** CONNECTs per device in any window of connectWindowMs; more get CONNACK 3. */
  connectsPerWindow: number;
  connectWindowMs: number;
  /** Sockets that have not sent CONNECT yet, per source address and in total; more are closed on accept. */
  maxPendingPerAddress: number;
  maxPending: number;
  /** Reconnect storms: sockets waiting for a handshake beyond the recent rate × this are closed on accept (0/absent: off). */
  handshakeTargetMs?: number;
  handshakeFloor?: number;
  /** How often live sessions are re-checked against the registry (safety net behind the events). */
  revalidateIntervalMs: number;
}

export interface DeviceEventSource {
  on(event: 'certificate_revoked', listener: (e: { serial: string; deviceId: string }) => void): unknown;
  on(event: 'device_status', listener: (e: { deviceId: string; status: string }) => void): unknown;
  /** The event connection is back after a loss: notifications sent meanwhile were missed. */
  on(event: 'resync', listener: () => void): unknown;
}

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
  handlers: Partial<Record<UpstreamSuffix, UpstreamHandler | UpstreamCallbackHandler>>;
  /** A device's subscriptions were granted (suffixes of its own topics, e.g. `firmware/manifest`). */
  onSubscribed?: (deviceId: string, suffixes: string[]) => void;
  /** Keeps a message a handler failed on as INTERNAL_REJECT (input-guard.ts); without it, such a message is not acknowledged. */
  internalReject?: InternalRejectRecorder;
}

interface SessionState {
  session: DeviceSession;
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
  const counters = { connectionsRefused: 0, publishesDenied: 0, subscribesDenied: 0, packetsTooLarge: 0, rateLimited: 0, cutOffs: 0, tlsRefused: 0, connectsThrottled: 0, refusedBeforeHandshake: 0, connectTimeouts: 0 };
  // Publish and CONNECT budgets per device id, kept across its connections (broker/device-limits.ts).
  const limits = new DeviceLimits({
    ratePerSecond: config.ratePerSecond,
    burst: config.rateBurst,
    floodCloseMs: config.rateFloodCloseMs,
    connectsPerWindow: config.connectsPerWindow,
    connectWindowMs: config.connectWindowMs,
    maxDevices: Math.max(10_000, 2 * config.maxConnections),
  });
  const guard = createInputGuard({ logger, record: deps.internalReject });
  // Registry answers at CONNECT, gathered and kept until an event says otherwise (registry-cache.ts).
  const registry = createRegistryCache({ lookup: deps.identity, ttlMs: config.revalidateIntervalMs });
  /** A hook failed outside a publish: the connection is closed and the event recorded. */
  const hookFailed = (hook: string, client: Client | null, err: unknown): void => {
    guard.hookFailed(hook, client ? sessions.get(client)?.session.deviceId : undefined, err);
    try {
      security('security.internal_error', client, errorClass(err), hook);
      client?.close();
    } catch (again) {
      logger.error({ err: again, hook }, 'could not record or close after a hook failure');
    }
  };

  const socketOf = (client: Client): tls.TLSSocket | undefined => (client.conn instanceof GuardedConnection ? client.conn.socket : undefined);
  /** Recorded aggregated per device (or certificate, or address) and reason: audit/security-events.ts. */
  const security = (action: string, client: Client | null, reason: string, target: string, details?: SecurityEvent['details']): void => {
    const state = client ? sessions.get(client) : undefined;
    const socket = client ? socketOf(client) : undefined;
    deps.securityEvents.record({
      action,
      reason,
      deviceId: state?.session.deviceId,
      certSerial: state?.session.certSerial ?? (socket ? peerSerial(socket) : undefined),
      certFingerprint: state?.session.certFingerprint,
      ourCertificate: socket?.authorized === true, // refused at CONNECT: the handshake verified it
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
    // No keepaliveLimit: Aedes answers it with return code 6, which MQTT 3.1.1 does not define;
    // decideConnect refuses keepalive out of bounds with 2, as the device contract says.
    maxClientsIdLength: config.maxClientIdLength,
    // Every hook below runs on device input: whatever throws in it is caught here, so that a bug
    // costs one message or one connection, never the process (input-guard.ts).
    preConnect(client, packet, done) {
      try {
        connectPackets.set(client, { keepalive: packet.keepalive ?? 0, ...(packet.will ? { will: { topic: packet.will.topic } } : {}) });
        const socket = socketOf(client);
        admission.connectReceived(socket?.remoteAddress, socket?.remotePort);
        // Aedes would accept MQTT 3.1 (level 3); the contract is 3.1.1 only [MQTT-3.1.2-2].
        const protocol = decideProtocol(packet.protocolVersion);
        if (protocol) return refuseEarly(client, packet.clientId, protocol, {}, done);
        const cn = socket?.authorized ? peerCn(socket) : undefined;
        const admitted = cn === undefined ? ({ ok: true } as const) : limits.admitConnect(cn);
        if (!admitted.ok) {
          counters.connectsThrottled++;
          return refuseEarly(client, packet.clientId, 'connect_rate_exceeded', { retryAfterMs: Math.round(admitted.retryAfterMs), connectsPerWindow: config.connectsPerWindow }, done);
        }
      } catch (err) {
        hookFailed('preConnect', client, err);
        return done(new ConnectRefused('registry_unavailable'), false);
      }
      done(null, true);
    },
    authenticate(client, username, password, done) {
      authenticate(client, username !== undefined || password !== undefined)
        .then(
          () => done(null, true),
          (err: unknown) => {
            const refusal = err instanceof ConnectRefused ? err : new ConnectRefused('registry_unavailable');
            if (!(err instanceof ConnectRefused) && !(err instanceof RegistryChanging)) logger.error({ err }, 'registry lookup failed during CONNECT');
            counters.connectionsRefused++;
            security('security.connect_refused', client, refusal.reason, client.id, { returnCode: refusal.returnCode });
            done(refusal, null);
          },
        )
        .catch((err: unknown) => hookFailed('authenticate', client, err));
    },
    authorizePublish(client, packet, done) {
      const state = client ? sessions.get(client) : undefined;
      if (!client || !state) return done(new Error('publish from an unauthenticated client'));
      // Every outcome, refusals too, waits for those of the client's earlier publishes.
      const acks = state.acks;
      const ticket = acks.open(done);
      let message: UpstreamPublish | undefined;
      let called = false;
      const finished = (err: unknown): void => {
        // A handler that calls back twice (or calls back, then throws) must not answer twice.
        if (called) return void logger.error({ err, deviceId: state.session.deviceId, topic: packet.topic }, 'upstream handler completed twice; ignored');
        called = true;
        if (!err) return acks.settle(ticket, null);
        guard.failed(state.session, message ?? { topic: packet.topic, suffix: '', payload: packet.payload as Buffer, qos: packet.qos, receivedAt: new Date() }, err, (e) => acks.settle(ticket, e));
      };
      try {
        const decision = authorizeDevicePublish(state.session.deviceId, packet);
        if (!decision.ok) {
          counters.publishesDenied++;
          security('security.publish_denied', client, decision.reason, packet.topic, { qos: packet.qos, retain: packet.retain });
          return finished(new NotAcknowledged(`publish refused: ${decision.reason}`));
        }
        const handler = deps.handlers[decision.suffix];
        if (!handler) return finished(new NotAcknowledged(`no handler for ${decision.suffix}`));
        const { waitMs: wait, overRateMs, flood } = limits.take(state.session.deviceId);
        if (wait > config.rateMaxWaitMs || flood) {
          limits.refund(state.session.deviceId);
          counters.rateLimited++;
          const reason = flood ? 'sustained_flood' : 'wait_too_long';
          security('security.rate_limited', client, reason, packet.topic, { waitMs: Math.round(wait), overRateMs: Math.round(overRateMs), ratePerSecond: config.ratePerSecond });
          return finished(new NotAcknowledged(`publish rate exceeded (${reason})`));
        }
        if (wait > 0 && !state.rateLimitedLogged) {
          state.rateLimitedLogged = true;
          logger.warn({ deviceId: state.session.deviceId, waitMs: Math.round(wait) }, 'device over its publish rate: acknowledgements slowed');
        }
        message = { topic: packet.topic, suffix: decision.suffix, payload: packet.payload as Buffer, qos: packet.qos, receivedAt: new Date() };
        // Behind a wait, a publish joins the session's queue (broker/pacer.ts): its handler runs
        // after those of the publishes before it, never before.
        const m = message;
        if (wait > 0 || state.pacer.waiting > 0) state.pacer.after(wait, () => runHandler(handler, state.session, m, finished));
        else runHandler(handler, state.session, message, finished);
      } catch (err) {
        finished(err);
      }
    },
    authorizeSubscribe(client, sub, done) {
      let decision: ReturnType<typeof authorizeDeviceSubscribe>;
      try {
        const state = sessions.get(client);
        decision = state ? authorizeDeviceSubscribe(state.session.deviceId, sub.topic) : { ok: false, reason: 'not_own_topic' };
        if (!decision.ok) {
          counters.subscribesDenied++;
          security('security.subscribe_denied', client, decision.reason, sub.topic);
        }
      } catch (err) {
        hookFailed('authorizeSubscribe', client, err);
        return done(null, null);
      }
      if (!decision.ok) return done(null, null); // SUBACK 0x80 for this filter [MQTT-3.9.3-2]; the session stays
      done(null, { ...sub, qos: Math.min(sub.qos, 1) as 0 | 1 });
    },
    authorizeForward(client, packet) {
      try {
        const state = sessions.get(client);
        return state && mayForward(state.session.deviceId, packet.topic) ? packet : null;
      } catch (err) {
        guard.hookFailed('authorizeForward', sessions.get(client)?.session.deviceId, err);
        return null;
      }
    },
  };

  /**
   * A refusal decided at CONNECT before authenticate: Aedes would close without a CONNACK, so the
   * CONNACK is written here [MQTT-3.2.2-5], then the connection closes.
   */
  function refuseEarly(client: Client, clientId: string, reason: ConnectRefusal, details: Record<string, unknown>, done: (err: Error | null, ok: boolean) => void): void {
    const refusal = new ConnectRefused(reason);
    counters.connectionsRefused++;
    security('security.connect_refused', client, reason, clientId, { returnCode: refusal.returnCode, ...details });
    // CONNACK: type 2, remaining length 2, no session present, the return code [MQTT-3.2.2].
    client.conn.write(Buffer.from([0x20, 0x02, 0x00, refusal.returnCode]), () => done(refusal, false));
  }

  /**
   * Hands a publish to its handler (a plain function: no closure per message on the hot path).
   * Whatever the handler does wrong, sync or async, ends in `finished` (input-guard.ts).
   */
  function runHandler(handler: UpstreamHandler | UpstreamCallbackHandler, session: DeviceSession, message: UpstreamPublish, finished: (err: unknown) => void): void {
    try {
      deps.presence?.seen(session.deviceId);
      if (typeof handler === 'function') {
        handler(session, message)
          .then(() => finished(null), finished)
          .catch((err: unknown) => guard.hookFailed('runHandler', session.deviceId, err));
        return;
      }
      handler.callback(session, message, finished);
    } catch (err) {
      finished(err);
    }
  }

  async function authenticate(client: Client, hasCredentials: boolean): Promise<void> {
    const socket = socketOf(client);
    const cert = socket?.getPeerCertificate();
    const cnRaw = cert && Object.keys(cert).length > 0 ? cert.subject?.CN : undefined;
    const certCn = Array.isArray(cnRaw) ? undefined : cnRaw;
    const packet = connectPackets.get(client);
    const serial = cert?.serialNumber ? normaliseSerial(cert.serialNumber) : undefined;
    const decide = async (): Promise<ConnectionIdentity> => {
      const identity = certCn && serial && socket?.authorized ? await registry.get(serial) : undefined;
      const refusal = decideConnect(
        { certCn: socket?.authorized ? certCn : undefined, clientId: client.id, hasCredentials, keepalive: packet?.keepalive ?? 0, will: packet?.will, now: new Date() },
        identity,
        config,
      );
      if (refusal || !identity) throw new ConnectRefused(refusal ?? 'unknown_certificate');
      return identity;
    };
    let identity = await decide();
    if (identity.deviceStatus === 'pending') {
      await deps.identity.markConnected(identity.deviceId);
      // Read again: the status changed, and an event may have arrived during the write.
      registry.invalidateDevice(identity.deviceId);
      identity = await decide();
    }
    if (!serial || !cert) throw new ConnectRefused('unknown_certificate');
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
    try {
      deps.presence?.connected(state.session.deviceId);
    } catch (err) {
      hookFailed('clientReady', client, err);
    }
    logger.info({ deviceId: state.session.deviceId, certSerial: state.session.certSerial, ip: state.session.remoteAddress }, 'device connected');
  });
  aedes.on('clientDisconnect', (client) => {
    const state = sessions.get(client);
    sessions.delete(client);
    if (!state) return;
    if (liveByDevice.get(state.session.deviceId) === client) {
      liveByDevice.delete(state.session.deviceId);
      try {
        deps.presence?.disconnected(state.session.deviceId);
      } catch (err) {
        guard.hookFailed('clientDisconnect', state.session.deviceId, err);
      }
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

  // Ticket keys fixed for this broker's life (or given): a CRL refresh must not void the tickets out.
  let tlsMaterial = { ...deps.tls, ticketKeys: deps.tls.ticketKeys ?? randomBytes(48) };
  // Certificates are verified in the handshake but refused here, so that the refusal is recorded
  // with the certificate presented (a revoked one knocking, a foreign CA): nothing reaches Aedes
  // before this gate.
  const server = tls.createServer(tlsServerOptions(tlsMaterial, { decideAfterHandshake: true, resumption: true }), (socket) => {
  const refused = admitAuthorized(socket);
    if (refused) {
      counters.tlsRefused++;
      deps.securityEvents.record({ action: 'security.tls_refused', reason: refused.reason, certSerial: refused.certSerial, certFingerprint: refused.certFingerprint, ourCertificate: refused.ourCertificate, ip: refused.ip, target: refused.subjectCn ?? '', targetType: 'tls', details: { issuerCn: refused.issuerCn ?? null } });
      return;
    }
    try {
      const conn = new GuardedConnection(socket, {
        maxPacketBytes: config.maxPacketBytes,
        onReject: (verdict) => {
          counters.packetsTooLarge++;
          try {
            const client = [...sessions.keys()].find((c) => c.conn === conn) ?? null;
            security('security.packet_rejected', client, verdict.reason, verdict.reason, { declaredBytes: verdict.declared, maxPacketBytes: config.maxPacketBytes });
          } catch (err) {
            guard.hookFailed('packetGuard', undefined, err); // the socket is destroyed all the same
          }
        },
      });
      guards.add(conn);
      conn.once('close', () => guards.delete(conn));
      if (holding) conn.hold();
      aedes.handle(conn);
    } catch (err) {
      guard.hookFailed('connection', undefined, err);
      socket.destroy();
    }
  });
  // Raw TCP first: caps and the accept-to-CONNECT deadline apply before the handshake (broker/admission.ts).
  const admission = createAdmission({
    options: { connectTimeoutMs: config.connectTimeoutMs, maxPendingPerAddress: config.maxPendingPerAddress, maxPending: config.maxPending, handshakeTargetMs: config.handshakeTargetMs, handshakeFloor: config.handshakeFloor },
    handOver: (socket) => server.emit('connection', socket),
    onRefused: (reason, ip) => {
      counters.refusedBeforeHandshake++;
      logger.debug({ ip, reason }, 'connection refused before the TLS handshake');
    },
    onTimeout: (ip) => {
      counters.connectTimeouts++;
      logger.debug({ ip, connectTimeoutMs: config.connectTimeoutMs }, 'no CONNECT in time: connection destroyed');
    },
  });
  admission.server.maxConnections = config.maxConnections;
  // Handshakes that fail before a certificate could be judged (protocol version, ciphers, a
  // client that hangs up or times out): recorded per address and reason.
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
    counters.tlsRefused++;
    deps.securityEvents.record({ action: 'security.tls_refused', reason: err.code ?? 'TLS_ERROR', ip: socket.remoteAddress, target: '', targetType: 'tls' });
  });

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
    server.setSecureContext(tlsServerOptions(tlsMaterial, { decideAfterHandshake: true, resumption: true }));
  }

  deps.events?.on('certificate_revoked', (e) => {
    const serial = normaliseSerial(e.serial);
    registry.invalidateSerial(serial);
    closeWhere((s) => s.session.certSerial === serial, 'certificate revoked');
    refreshCrl().catch((err: unknown) => logger.error({ err }, 'could not refresh the CRL'));
  });
  deps.events?.on('device_status', (e) => {
    registry.invalidateDevice(e.deviceId);
    if (e.status === 'suspended' || e.status === 'retired') closeWhere((s) => s.session.deviceId === e.deviceId, `device ${e.status}`);
  });

  // Safety net behind the events (a lost notification, a certificate expiring mid-session).
  const revalidate = async (): Promise<void> => {
    const live = [...sessions].map(([client, state]) => ({ key: client, certSerial: state.session.certSerial }));
    for (const client of await sessionsToClose(live, (serials) => deps.identity.connectionIdentities(serials), Date.now)) {
      const state = sessions.get(client);
      if (!state) continue;
      counters.cutOffs++;
      logger.warn({ deviceId: state.session.deviceId }, 'session no longer valid in the registry: closing');
      client.close();
    }
  };
  // A revocation or suspension notified while the event connection was down (a database restart)
  // was never delivered: re-read the CRL and re-check every live session at once.
  deps.events?.on('resync', () => {
    registry.clear();
    refreshCrl().catch((err: unknown) => logger.error({ err }, 'could not refresh the CRL'));
    revalidate().catch((err: unknown) => logger.warn({ err }, 'revalidation after the event connection came back failed'));
  });
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
    /** INTERNAL_REJECTs and hook failures, by topic suffix (or `hook:<name>`) and error class. */
    internalRejects: guard.counts,
    async listen(): Promise<AddressInfo> {
      await deps.presence?.reset();
      await new Promise<void>((resolve, reject) => {
        admission.server.once('error', reject);
        admission.server.listen(config.port, config.host, () => resolve());
      });
      const address = admission.server.address() as AddressInfo;
      logger.info({ host: address.address, port: address.port }, 'MQTT broker listening (mTLS)');
      return address;
    },
    listening: () => admission.server.listening,
    /** Accepted sockets that have not sent CONNECT yet. */
    pendingConnections: () => admission.pending(),
    clients(): ConnectedClient[] {
      return [...liveByDevice.values()].flatMap((client) => {
        const s = sessions.get(client);
        return s ? [{ deviceId: s.session.deviceId, certSerial: s.session.certSerial, remoteAddress: s.session.remoteAddress, connectedAt: s.connectedAt.toISOString() }] : [];
      });
    },
    disconnectCertificate: (serial: string) => closeWhere((s) => s.session.certSerial === normaliseSerial(serial), 'certificate revoked'),
    disconnectDevice: (deviceId: string) => closeWhere((s) => s.session.deviceId === deviceId, 'device disabled'),
    refreshCrl,
    /** One revalidation sweep now (what the timer runs): for the storm bench and tests. */
    revalidateNow: (): Promise<void> => revalidate(),
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
      registry.stop();
      await new Promise<void>((resolve) => {
        admission.server.close(() => resolve());
        admission.destroyPending();
        for (const client of sessions.keys()) client.close();
        for (const g of guards) g.destroy();
      });
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await deps.presence?.stop();
    },
  };
}

/** The verified certificate's subject CN (the device id), if any. */
function peerCn(socket: tls.TLSSocket): string | undefined {
  const cn = socket.getPeerCertificate()?.subject?.CN;
  return typeof cn === 'string' ? cn : undefined;
}

function peerSerial(socket: tls.TLSSocket): string | undefined {
  const cert = socket.getPeerCertificate();
  return cert?.serialNumber ? normaliseSerial(cert.serialNumber) : undefined;
}

export type Broker = Awaited<ReturnType<typeof createBroker>>;
