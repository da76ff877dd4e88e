import type { FastifyRequest } from 'fastify';
import type { AuditActor } from '../audit/index.ts';
import type { ScopeCredential } from '../db/scoped.ts';

export type { AuditActor };

export function auditActor(request: FastifyRequest): AuditActor {
  const ua = request.headers['user-agent'];
  return {
    actorId: request.principal?.id ?? 'anonymous',
    actorRole: request.principal?.role ?? 'anonymous',
    ip: request.ip,
    userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null,
    requestId: request.id,
  };
}

/** What the database verifies an authenticated request's scope from (db/scoped.ts, docs/security-model.md). */
export function credentialOf(request: FastifyRequest): ScopeCredential {
  const p = request.principal;
  if (!p)
    throw new Error('credentialOf() needs an authenticated request (use requirePermission first)');
  return p.credential;
}
