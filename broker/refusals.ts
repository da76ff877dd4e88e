import type { Client } from 'aedes';
import type { Logger } from 'pino';
import type { SecurityEvent, SecurityEvents } from '../audit/index.ts';
import { errorClass, type InputGuard } from './input-guard.ts';
import { peerSerial, socketOf } from './peer.ts';
import type { SessionRegistry } from './sessions.ts';

export type RecordRefusal = (
  action: string,
  client: Client | null,
  reason: string,
  target: string,
  details?: SecurityEvent['details'],
) => void;

/**
 * How the broker's hooks report what they refuse: a security event with whatever is known of the
 * peer (its session, else its certificate and address), aggregated per device (or certificate, or
 * address) and reason by audit/security-events.ts.
 */
export function createRefusals(deps: {
  securityEvents: Pick<SecurityEvents, 'record'>;
  sessions: Pick<SessionRegistry, 'get'>;
  guard: Pick<InputGuard, 'hookFailed'>;
  logger: Logger;
}) {
  const record: RecordRefusal = (action, client, reason, target, details) => {
    const state = client ? deps.sessions.get(client) : undefined;
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
  /** A hook failed outside a publish: the connection is closed and the event recorded. */
  const hookFailed = (hook: string, client: Client | null, err: unknown): void => {
    deps.guard.hookFailed(
      hook,
      client ? deps.sessions.get(client)?.session.deviceId : undefined,
      err,
    );
    try {
      record('security.internal_error', client, errorClass(err), hook);
      client?.close();
    } catch (again) {
      deps.logger.error({ err: again, hook }, 'could not record or close after a hook failure');
    }
  };
  return { record, hookFailed };
}

export type Refusals = ReturnType<typeof createRefusals>;
