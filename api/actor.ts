import type { FastifyRequest } from 'fastify';
import type { AuditActor } from '../audit/index.ts';

/** The audit identity of an HTTP request (after requirePermission has set the principal). */
export function actorOf(request: FastifyRequest): AuditActor {
  const ua = request.headers['user-agent'];
  return {
    actorId: request.principal?.id ?? 'anonymous',
    actorRole: request.principal?.role ?? 'anonymous',
    ip: request.ip,
    userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null,
    requestId: request.id,
  };
}
