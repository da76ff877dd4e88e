import {
  downstreamSuffixes,
  upstreamSuffixes,
  type DownstreamSuffix,
  type UpstreamSuffix,
} from './types.ts';

/**
 * Which topics a device may use. Pure functions: the broker hooks call them and turn a refusal
 * into a closed connection (publish) or a SUBACK failure (subscribe), plus a security event.
 * A device speaks only for itself: `devices/{its id}/{suffix}` with a suffix from the contract.
 */

export type PolicyRefusal =
  | 'not_own_topic'
  | 'unknown_suffix'
  | 'wildcard'
  | 'system_topic'
  | 'retain_not_allowed'
  | 'qos_not_allowed';

export type PublishDecision =
  { ok: true; suffix: UpstreamSuffix } | { ok: false; reason: PolicyRefusal };
export type SubscribeDecision =
  { ok: true; suffix: DownstreamSuffix } | { ok: false; reason: PolicyRefusal };

const upstream = new Set<string>(upstreamSuffixes);
const downstream = new Set<string>(downstreamSuffixes);

function ownSuffix(
  deviceId: string,
  topic: string,
): { suffix: string } | { reason: PolicyRefusal } {
  if (topic.startsWith('$')) return { reason: 'system_topic' }; // $SYS and any other $-topic [MQTT-4.7.2-1]
  if (topic.includes('#') || topic.includes('+')) return { reason: 'wildcard' };
  const prefix = `devices/${deviceId}/`;
  if (!topic.startsWith(prefix)) return { reason: 'not_own_topic' };
  return { suffix: topic.slice(prefix.length) };
}

export function authorizeDevicePublish(
  deviceId: string,
  packet: { topic: string; retain: boolean; qos: number },
): PublishDecision {
  const own = ownSuffix(deviceId, packet.topic);
  if ('reason' in own) return { ok: false, reason: own.reason };
  if (!upstream.has(own.suffix)) return { ok: false, reason: 'unknown_suffix' };
  // Retained messages from devices are not part of the contract: nothing upstream is retained.
  if (packet.retain) return { ok: false, reason: 'retain_not_allowed' };
  // QoS 2 costs four packets per message for nothing ingest needs (idempotent on device+ts).
  if (packet.qos > 1) return { ok: false, reason: 'qos_not_allowed' };
  return { ok: true, suffix: own.suffix as UpstreamSuffix };
}

export function authorizeDeviceSubscribe(deviceId: string, topic: string): SubscribeDecision {
  const own = ownSuffix(deviceId, topic);
  if ('reason' in own) return { ok: false, reason: own.reason };
  if (!downstream.has(own.suffix)) return { ok: false, reason: 'unknown_suffix' };
  return { ok: true, suffix: own.suffix as DownstreamSuffix };
}

/** Server-originated messages go only to the device they are addressed to. */
export function mayForward(deviceId: string, topic: string): boolean {
  const own = ownSuffix(deviceId, topic);
  return 'suffix' in own && downstream.has(own.suffix);
}

/**
 * A server-sent command (`devices/{id}/commands`) whose `expiresAt` has passed. Aedes keeps QoS 1
 * messages for an offline persistent session and sends them at its next connection
 * [MQTT-3.1.2-5]; a command must not reach the device after its time-out (ADR 0013), so the
 * delivery check drops it. Only the gateway publishes there, so the payload is ours.
 */
export function isExpiredCommand(topic: string, payload: unknown, now: number): boolean {
  if (!topic.endsWith('/commands') || !Buffer.isBuffer(payload)) return false;
  try {
    const { expiresAt } = JSON.parse(payload.toString('utf8')) as { expiresAt?: unknown };
    return typeof expiresAt === 'string' && Date.parse(expiresAt) <= now;
  } catch {
    return false;
  }
}
