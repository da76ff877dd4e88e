import type { Logger } from '../app/logger.ts';
import type { AuditEntry } from '../audit/index.ts';

export interface SecurityEvent {
  /** `security.<what>`, e.g. security.publish_denied. */
  action: string;
  deviceId: string | undefined;
  certSerial: string | undefined;
  ip: string | undefined;
  /** What was attempted: a topic, a client id. */
  target: string;
  details: Record<string, unknown>;
}

/**
 * Every refusal is logged and recorded in the audit log (device, certificate serial, IP, what
 * was attempted). Recording never blocks or fails the broker: a failed write is logged.
 * Identical events from one device are recorded at most once per second, so an attacker cannot
 * turn refusals into a write amplifier.
 */
export function createSecurityEvents(deps: { audit: { record(entry: AuditEntry): Promise<unknown> }; logger: Logger }) {
  const lastRecorded = new Map<string, number>();
  return {
    record(event: SecurityEvent): void {
      deps.logger.warn({ deviceId: event.deviceId, certSerial: event.certSerial, ip: event.ip, target: event.target, ...event.details }, event.action);
      const key = `${event.action}|${event.deviceId ?? event.certSerial ?? event.ip}|${event.target}`;
      const now = Date.now();
      if ((lastRecorded.get(key) ?? 0) > now - 1000) return;
      lastRecorded.set(key, now);
      if (lastRecorded.size > 10_000) lastRecorded.clear();
      deps.audit
        .record({
          actorId: event.deviceId ? `device:${event.deviceId}` : `cert:${event.certSerial ?? 'none'}`,
          actorRole: 'device',
          ip: event.ip ?? null,
          action: event.action,
          targetType: 'mqtt',
          targetId: event.target,
          after: { certSerial: event.certSerial ?? null, ...event.details },
        })
        .catch((err: unknown) => deps.logger.error({ err, action: event.action }, 'could not record security event'));
    },
  };
}

export type SecurityEvents = ReturnType<typeof createSecurityEvents>;
