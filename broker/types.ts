import type { DeviceKind } from '../devices/metrics.ts';

/**
 * The contract between the broker and what sits behind it (ingest, certificate renewal,
 * firmware state). The broker authenticates the device (mTLS + registry), authorizes the topic,
 * then hands each upstream publish to the handler registered for its topic suffix.
 */

/** Who is on the other end of an MQTT connection, established in `authenticate`. */
export interface DeviceSession {
  readonly deviceId: string;
  readonly unitId: string;
  readonly kind: DeviceKind;
  /** Hex serial of the client certificate used for this connection. */
  readonly certSerial: string;
  /** SHA-256 fingerprint (hex, lowercase, no colons) of that certificate. */
  readonly certFingerprint: string;
  readonly clientId: string;
  readonly remoteAddress: string | undefined;
}

export interface UpstreamPublish {
  /** Full topic, `devices/{id}/{suffix}`. */
  readonly topic: string;
  /** The part after `devices/{id}/`, e.g. `telemetry`. */
  readonly suffix: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1 | 2;
  readonly receivedAt: Date;
}

/**
 * Handles one device publish. The broker awaits it inside Aedes' `authorizePublish`, which runs
 * before Aedes writes the QoS 1 PUBACK: resolving lets the PUBACK go out, so resolve only once
 * the message (or its quarantine record) is durably committed. Rejecting withholds the PUBACK
 * and closes the connection (MQTT 3.1.1 has no negative acknowledgement [MQTT-3.3.5-2]); the
 * device then retries the message on its next connection.
 */
export type UpstreamHandler = (session: DeviceSession, message: UpstreamPublish) => Promise<void>;

/**
 * The same contract with a callback instead of a promise, for the hot path (telemetry): at tens
 * of thousands of publishes a second, a promise chain per message is a measurable share of the
 * gateway's thread (BENCHMARKS.md). `done(null)` lets the PUBACK go out; `done(err)` withholds it.
 */
export interface UpstreamCallbackHandler {
  callback(
    session: DeviceSession,
    message: UpstreamPublish,
    done: (err: Error | null) => void,
  ): void;
}

/** Server-to-device messages on `devices/{id}/{suffix}` (errors, renewed certificates, firmware manifests). */
export interface DownstreamPublisher {
  publish(
    deviceId: string,
    suffix: string,
    payload: string | Buffer,
    opts?: { qos?: 0 | 1; retain?: boolean },
  ): Promise<void>;
}

/** Topic suffixes of the device contract (docs/device-contract.md). */
export const upstreamSuffixes = [
  'telemetry',
  'state',
  'cert/csr',
  'config/reported',
  'commands/result',
] as const;
export const downstreamSuffixes = [
  'errors',
  'cert/issued',
  'firmware/manifest',
  'config',
  'commands',
] as const;
export type UpstreamSuffix = (typeof upstreamSuffixes)[number];
export type DownstreamSuffix = (typeof downstreamSuffixes)[number];
