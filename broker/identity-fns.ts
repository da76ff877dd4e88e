import type { ConnectRefusal } from './broker-errors.ts';
import type { DeviceKind } from '../devices/metrics.ts';

/** What the registry says about a certificate presented at CONNECT (provided by provisioning). */
export interface ConnectionIdentity {
  deviceId: string;
  unitId: string;
  kind: DeviceKind;
  deviceStatus: 'pending' | 'active' | 'suspended' | 'retired';
  /** `active` certificates may connect; revoked/expired/superseded-past-overlap may not. */
  certStatus: string;
  notAfter: Date;
}

export interface ConnectFacts {
  /** Subject CN of the verified peer certificate, undefined when no certificate was presented. */
  certCn: string | undefined;
  clientId: string;
  hasCredentials: boolean;
  keepalive: number;
  will: { topic: string } | undefined;
  now: Date;
}

export interface ConnectLimits {
  keepaliveMinSeconds: number;
  keepaliveMaxSeconds: number;
  maxClientIdLength: number;
}

/**
 * The CONNECT decision, given the registry's view of the certificate. The TLS layer has already
 * proved the chain to our CA; this adds what TLS cannot know: revocation in the registry (so a
 * resumed TLS session or a stale CRL cannot let a revoked certificate in), device status, and
 * that the MQTT identity is the certificate's identity.
 */
export function decideConnect(
  facts: ConnectFacts,
  identity: ConnectionIdentity | undefined,
  limits: ConnectLimits,
): ConnectRefusal | undefined {
  if (facts.certCn === undefined) return 'no_client_certificate';
  if (facts.hasCredentials) return 'credentials_not_accepted';
  if (facts.clientId.length > limits.maxClientIdLength) return 'client_id_too_long';
  // [MQTT-3.1.3-8] lets a broker accept an empty clientId; we do not: the id is the identity.
  if (facts.clientId !== facts.certCn) return 'client_id_mismatch';
  // keepalive 0 would disable the broker's liveness check [MQTT-3.1.2-23]; bounded both ways.
  if (facts.keepalive < limits.keepaliveMinSeconds || facts.keepalive > limits.keepaliveMaxSeconds)
    return 'keepalive_out_of_bounds';
  if (!identity) return 'unknown_certificate';
  if (identity.deviceId !== facts.certCn) return 'unknown_certificate';
  if (identity.certStatus === 'revoked') return 'certificate_revoked';
  if (identity.notAfter.getTime() <= facts.now.getTime()) return 'certificate_expired';
  if (identity.certStatus !== 'active') return 'certificate_not_active';
  if (identity.deviceStatus === 'suspended') return 'device_suspended';
  if (identity.deviceStatus === 'retired') return 'device_retired';
  // A Will is published by the broker on the device's behalf, so it obeys the same topic rules.
  if (facts.will && facts.will.topic !== `devices/${facts.clientId}/state`)
    return 'will_not_allowed';
  return undefined;
}

/** MQTT 3.1.1 is protocol level 4 [MQTT-3.1.2-2]; the device contract accepts nothing else (not 3.1's level 3). */
export const SUPPORTED_PROTOCOL_LEVEL = 4;

/** Decided on the CONNECT alone, before Aedes' own checks (it accepts MQTT 3.1) and before any lookup. */
export function decideProtocol(protocolVersion: number | undefined): ConnectRefusal | undefined {
  return protocolVersion === SUPPORTED_PROTOCOL_LEVEL ? undefined : 'protocol_version_unsupported';
}

/** node's serialNumber is upper-case hex that may keep leading zeros; the registry's may not. */
export function normaliseSerial(serial: string): string {
  return serial
    .replace(/:/g, '')
    .toLowerCase()
    .replace(/^0+(?=.)/, '');
}

export function normaliseFingerprint(fp: string): string {
  return fp.replace(/:/g, '').toLowerCase();
}
