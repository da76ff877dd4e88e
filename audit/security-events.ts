import type { AuditLog } from './audit-service.ts';

/** What the broker reports: refused connections and denied publishes/subscribes. */
export interface BrokerSecurityEvent {
  type: 'connect_refused' | 'publish_denied' | 'subscribe_denied' | 'revoked_certificate' | 'unknown_device';
  clientId: string;
  deviceId?: string | undefined;
  certSerial?: string | undefined;
  certFingerprint?: string | undefined;
  remoteAddress?: string | undefined;
  topic?: string | undefined;
  reason: string;
}

/**
 * Broker security events into the audit store (`security.<type>`), as `device:<id>` (or
 * `mqtt:<clientId>` when the device is unknown). A device that misbehaves in a loop must not
 * flood the log: per (type, client) at most one entry per window; the entry after a quiet
 * period carries how many were suppressed. Never throws into the broker: failures are reported
 * through onError.
 */
export function createSecurityEvents(deps: { audit: Pick<AuditLog, 'record'>; now?: () => number; windowMs?: number; onError?: (err: unknown) => void }) {
  const now = deps.now ?? Date.now;
  const windowMs = deps.windowMs ?? 60_000;
  const last = new Map<string, { at: number; suppressed: number }>();

  return {
    async record(event: BrokerSecurityEvent): Promise<boolean> {
      const key = `${event.type}|${event.clientId}`;
      const seen = last.get(key);
      if (seen && now() - seen.at < windowMs) {
        seen.suppressed += 1;
        return false;
      }
      if (last.size > 10_000) last.clear();
      last.set(key, { at: now(), suppressed: 0 });
      try {
        await deps.audit.record({
          actorId: event.deviceId ? `device:${event.deviceId}` : `mqtt:${event.clientId}`,
          actorRole: 'device',
          ip: event.remoteAddress ?? null,
          userAgent: null,
          requestId: null,
          action: `security.${event.type}`,
          targetType: 'mqtt_client',
          targetId: event.clientId,
          after: { reason: event.reason, topic: event.topic ?? null, certSerial: event.certSerial ?? null, certFingerprint: event.certFingerprint ?? null, suppressedBefore: seen?.suppressed ?? 0 },
        });
        return true;
      } catch (err) {
        deps.onError?.(err);
        return false;
      }
    },
  };
}

export type SecurityEvents = ReturnType<typeof createSecurityEvents>;
