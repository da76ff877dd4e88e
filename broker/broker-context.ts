import type { ConnectLimits } from './identity-fns.ts';
import type { InternalRejectRecorder } from './input-guard.ts';
import type { UpstreamCallbackHandler, UpstreamHandler, UpstreamSuffix } from './types.ts';

/**
 * What the parts of the broker share: its config slice, its counters, and what sits behind it
 * (the routes, given when it starts listening). broker-service.ts builds the parts; each takes a
 * `Pick<>` of these.
 */
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
  /** Behind HAProxy: a PROXY v2 header, believed from these sources only (broker/proxy-protocol.ts). */
  proxyProtocol?: { trustedProxies: readonly string[] } | undefined;
}

/**
 * What the broker hands device input to: ingest, certificate renewal, firmware state. Given to
 * `listen()`, not to `createBroker`: these consumers publish back to devices through the broker,
 * so they are built from the broker's `publisher` and `backpressure`, then handed in here. The
 * dependency runs one way (consumers depend on the broker's ports) and no connection is accepted
 * before the routes are known.
 */
export interface BrokerRoutes {
  handlers: Partial<Record<UpstreamSuffix, UpstreamHandler | UpstreamCallbackHandler>>;
  /** A device's subscriptions were granted (suffixes of its own topics, e.g. `firmware/manifest`). */
  onSubscribed?: (deviceId: string, suffixes: string[]) => void;
  /** The device acknowledged (PUBACK) a QoS 1 message sent on its own topic `suffix`: it was delivered. */
  onDelivered?: (deviceId: string, suffix: string, payload: Buffer) => void;
  /** Keeps a message a handler failed on as INTERNAL_REJECT (input-guard.ts); without it, such a message is not acknowledged. */
  internalReject?: InternalRejectRecorder;
}

/** Plain numbers on the hot paths, read by the metrics at scrape time (app/gateway-metrics.ts). */
export function newBrokerCounters() {
  return {
    connectionsRefused: 0,
    publishesDenied: 0,
    subscribesDenied: 0,
    packetsTooLarge: 0,
    rateLimited: 0,
    cutOffs: 0,
    tlsRefused: 0,
    connectsThrottled: 0,
    refusedBeforeHandshake: 0,
    connectTimeouts: 0,
  };
}
export type BrokerCounters = ReturnType<typeof newBrokerCounters>;
