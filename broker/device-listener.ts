import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { SecurityEvents } from '../audit/index.ts';
import { adoptProxiedPeer, createAdmission } from './admission.ts';
import { trustedProxies } from './proxy-protocol.ts';
import type { BrokerConfig, BrokerCounters } from './broker-context.ts';
import type { InputGuard } from './input-guard.ts';
import { GuardedConnection } from './packet-guard.ts';
import type { Refusals } from './refusals.ts';
import type { SessionRegistry } from './sessions.ts';
import { admitAuthorized, tlsServerOptions, type BrokerTlsMaterial } from './tls.ts';

export interface DeviceListenerDeps {
  config: Pick<
    BrokerConfig,
    | 'host'
    | 'port'
    | 'maxPacketBytes'
    | 'maxConnections'
    | 'connectTimeoutMs'
    | 'maxPendingPerAddress'
    | 'maxPending'
    | 'handshakeTargetMs'
    | 'handshakeFloor'
    | 'proxyProtocol'
  >;
  logger: Logger;
  tls: BrokerTlsMaterial;
  counters: Pick<
    BrokerCounters,
    'tlsRefused' | 'packetsTooLarge' | 'refusedBeforeHandshake' | 'connectTimeouts'
  >;
  securityEvents: Pick<SecurityEvents, 'record'>;
  refusals: Pick<Refusals, 'record'>;
  guard: Pick<InputGuard, 'hookFailed'>;
  sessions: Pick<SessionRegistry, 'byConnection'>;
  /** Takes a connection that passed every gate (Aedes' `handle`). */
  handle(conn: GuardedConnection): void;
}

/**
 * The way in, gate by gate: raw TCP (caps, accept-to-CONNECT deadline: broker/admission.ts), the
 * TLS handshake and its certificate verdict (broker/tls.ts), then the packet guard
 * (broker/packet-guard.ts) in front of Aedes. Also where ingest's backpressure stops reading.
 */
export function createDeviceListener(deps: DeviceListenerDeps) {
  const { config, logger, counters } = deps;
  const guards = new Set<GuardedConnection>();
  let holding = false;
  // Ticket keys fixed for this broker's life (or given): a CRL refresh must not void the tickets.
  let tlsMaterial = { ...deps.tls, ticketKeys: deps.tls.ticketKeys ?? randomBytes(48) };

  // Certificates are verified in the handshake but refused here, so that the refusal is recorded
  // with the certificate presented (a revoked one knocking, a foreign CA): nothing reaches Aedes
  // before this gate.
  const server = tls.createServer(
    tlsServerOptions(tlsMaterial, { decideAfterHandshake: true, resumption: true }),
    (socket) => {
      adoptProxiedPeer(socket);
      const refused = admitAuthorized(socket);
      if (refused) {
        counters.tlsRefused++;
        deps.securityEvents.record({
          action: 'security.tls_refused',
          reason: refused.reason,
          certSerial: refused.certSerial,
          certFingerprint: refused.certFingerprint,
          ourCertificate: refused.ourCertificate,
          ip: refused.ip,
          target: refused.subjectCn ?? '',
          targetType: 'tls',
          details: { issuerCn: refused.issuerCn ?? null },
        });
        return;
      }
      try {
        const conn = new GuardedConnection(socket, {
          maxPacketBytes: config.maxPacketBytes,
          onReject: (verdict) => {
            counters.packetsTooLarge++;
            try {
              deps.refusals.record(
                'security.packet_rejected',
                deps.sessions.byConnection(conn),
                verdict.reason,
                verdict.reason,
                { declaredBytes: verdict.declared, maxPacketBytes: config.maxPacketBytes },
              );
            } catch (err) {
              deps.guard.hookFailed('packetGuard', undefined, err); // the socket is destroyed all the same
            }
          },
        });
        guards.add(conn);
        conn.once('close', () => guards.delete(conn));
        if (holding) conn.hold();
        deps.handle(conn);
      } catch (err) {
        deps.guard.hookFailed('connection', undefined, err);
        socket.destroy();
      }
    },
  );
  // Raw TCP first: caps and the accept-to-CONNECT deadline apply before the handshake.
  const admission = createAdmission({
    options: {
      connectTimeoutMs: config.connectTimeoutMs,
      maxPendingPerAddress: config.maxPendingPerAddress,
      maxPending: config.maxPending,
      handshakeTargetMs: config.handshakeTargetMs,
      handshakeFloor: config.handshakeFloor,
    },
    handOver: (socket) => server.emit('connection', socket),
    onRefused: (reason, ip) => {
      counters.refusedBeforeHandshake++;
      // A PROXY refusal is a misconfiguration or someone posing as the load balancer: worth a warning.
      if (reason === 'proxy_untrusted' || reason === 'proxy_header')
        logger.warn({ ip, reason }, 'connection refused: PROXY protocol header not believed');
      else logger.debug({ ip, reason }, 'connection refused before the TLS handshake');
    },
    proxy: config.proxyProtocol
      ? { trusted: trustedProxies(config.proxyProtocol.trustedProxies) }
      : undefined,
    onTimeout: (ip) => {
      counters.connectTimeouts++;
      logger.debug(
        { ip, connectTimeoutMs: config.connectTimeoutMs },
        'no CONNECT in time: connection destroyed',
      );
    },
  });
  admission.server.maxConnections = config.maxConnections;
  // Handshakes that fail before a certificate could be judged (protocol version, ciphers, a
  // client that hangs up or times out): recorded per address and reason.
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
    adoptProxiedPeer(socket);
    counters.tlsRefused++;
    deps.securityEvents.record({
      action: 'security.tls_refused',
      reason: err.code ?? 'TLS_ERROR',
      ip: socket.remoteAddress,
      target: '',
      targetType: 'tls',
    });
  });

  return {
    admission,
    async listen(): Promise<AddressInfo> {
      await new Promise<void>((resolve, reject) => {
        admission.server.once('error', reject);
        admission.server.listen(config.port, config.host, () => resolve());
      });
      return admission.server.address() as AddressInfo;
    },
    listening: () => admission.server.listening,
    /** New CRLs for handshakes from now on (live sessions are judged by broker/session-control.ts). */
    setCrl: (crl: string[] | undefined): void => {
      tlsMaterial = { ...tlsMaterial, crl };
      server.setSecureContext(
        tlsServerOptions(tlsMaterial, { decideAfterHandshake: true, resumption: true }),
      );
    },
    /** Stop reading every device socket (ingest's backpressure) until release. */
    hold: (): void => {
      holding = true;
      for (const g of guards) g.hold();
    },
    release: (): void => {
      holding = false;
      for (const g of guards) g.release();
    },
    /** Stops accepting; `closed` once the listener is; pending sockets and guarded connections are destroyed. */
    close(closeSessions: () => void): Promise<void> {
      return new Promise<void>((resolve) => {
        admission.server.close(() => resolve());
        admission.destroyPending();
        closeSessions();
        for (const g of guards) g.destroy();
      });
    },
  };
}

export type DeviceListener = ReturnType<typeof createDeviceListener>;
