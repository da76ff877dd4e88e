import type { FastifyError, FastifyInstance } from 'fastify';
import type { AuditEntry } from '../audit/index.ts';

/**
 * A refused HTTP request as a security event. The shape is the device side's SecurityEvent
 * (audit/security-events.ts on the security-events branch): action, reason, ip, target,
 * targetType, details, so one aggregating recorder can take both.
 */
export interface HttpSecurityEvent {
  /** `security.http_forbidden`, `security.http_unauthenticated`. */
  action: string;
  /** The error code: FORBIDDEN, CSRF_FAILED, CROSS_SITE_REQUEST, UNAUTHENTICATED. */
  reason: string;
  ip?: string | undefined;
  /** `METHOD /route`. */
  target: string;
  targetType?: string | undefined;
  details?: Record<string, unknown> | undefined;
}

/** Where refusals go: never throws, never waits (the request is already being answered). */
export interface SecurityEventSink {
  record(event: HttpSecurityEvent): void;
}

/**
 * A small aggregating sink into the audit store: per (action, reason, ip) and window, the first
 * refusal is written at once and the rest counted; the next write after the window carries how
 * many were suppressed. Bounded: at most `maxKeys` keys and `maxInFlight` writes; beyond them
 * events are counted as dropped. (The device side's recorder aggregates the same way; either
 * can stand behind SecurityEventSink.)
 */
export function createRefusalEvents(deps: {
  audit: { record(entry: AuditEntry): Promise<unknown> };
  now?: () => number;
  windowMs?: number;
  maxKeys?: number;
  maxInFlight?: number;
  onError?: (err: unknown) => void;
}) {
  const now = deps.now ?? Date.now;
  const windowMs = deps.windowMs ?? 60_000;
  const maxKeys = deps.maxKeys ?? 10_000;
  const maxInFlight = deps.maxInFlight ?? 16;
  const keys = new Map<string, { at: number; suppressed: number }>();
  let inFlight = 0;
  const counters = { events: 0, written: 0, suppressed: 0, dropped: 0 };

  const sink: SecurityEventSink & { counters: typeof counters } = {
    counters,
    record(event) {
      counters.events += 1;
      const key = `${event.action}|${event.reason}|${event.ip ?? ''}`;
      const seen = keys.get(key);
      const t = now();
      if (seen && t - seen.at < windowMs) {
        seen.suppressed += 1;
        counters.suppressed += 1;
        return;
      }
      if (inFlight >= maxInFlight) {
        counters.dropped += 1;
        return;
      }
      if (!seen && keys.size >= maxKeys) keys.clear();
      keys.set(key, { at: t, suppressed: 0 });
      inFlight += 1;
      deps.audit
        .record({
          // Never the address as actor: the signed entry is kept 7 years, a person's IP only as long
          // as sign-in metadata is (it goes beside the entry, audit_request_meta; issue 17 §4).
          actorId:
            typeof event.details?.principal === 'string' ? event.details.principal : 'anonymous',
          actorRole: typeof event.details?.role === 'string' ? event.details.role : 'anonymous',
          ip: event.ip ?? null,
          action: event.action,
          targetType: event.targetType ?? 'https',
          targetId: event.target.slice(0, 256),
          after: {
            reason: event.reason,
            ...event.details,
            suppressedBefore: seen?.suppressed ?? 0,
            windowSeconds: windowMs / 1000,
          },
        })
        .then(() => void (counters.written += 1), deps.onError ?? (() => undefined))
        .finally(() => void (inFlight -= 1));
    },
  };
  return sink;
}

export type RefusalEvents = ReturnType<typeof createRefusalEvents>;

/**
 * Every 401/403 the API answers becomes a security event (sign-in failures and throttling are
 * recorded by the login itself). Runs in onError, before the error handler shapes the reply.
 */
export function installRefusalEvents(app: FastifyInstance, sink: SecurityEventSink): void {
  app.addHook('onError', (request, _reply, err: FastifyError, done) => {
    const status = err.statusCode ?? 500;
    // A wrong password is recorded by the sign-in itself (security.login_failed).
    if ((status === 401 || status === 403) && err.code !== 'INVALID_CREDENTIALS') {
      const route = request.routeOptions.url ?? request.url.split('?')[0] ?? '';
      const ua = request.headers['user-agent'];
      sink.record({
        action: status === 403 ? 'security.http_forbidden' : 'security.http_unauthenticated',
        reason: err.code ?? 'ERROR',
        ip: request.ip,
        target: `${request.method} ${route}`,
        targetType: 'https',
        details: {
          ...(request.principal
            ? { principal: request.principal.id, role: request.principal.role }
            : {}),
          message: err.message.slice(0, 200),
          userAgent: typeof ua === 'string' ? ua.slice(0, 200) : null,
          requestId: request.id,
        },
      });
    }
    done();
  });
}
