import type { FastifyRequest } from 'fastify';
import type { AuditActor } from '../audit/index.ts';
import type { Scope } from '../db/scoped.ts';

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

/** The runScoped identity of an authenticated request: RLS policies read it (docs/security-model.md). */
export function scopeOf(request: FastifyRequest): Scope {
  const p = request.principal;
  if (!p) throw new Error('scopeOf() needs an authenticated request (use requirePermission first)');
  return { actorId: p.id, role: p.role };
}
