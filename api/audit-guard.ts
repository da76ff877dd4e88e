import type { FastifyInstance } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import type { AuditLog } from '../audit/index.ts';

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Safety net for "every administrative action is recorded": wraps the audit log handed to the
 * route plugins so it remembers which request ids recorded an entry, and after each successful
 * state-changing request by an authenticated principal that recorded nothing, logs an error and
 * counts `thamani_audit_missing_total`. Tests assert the counter stays at zero.
 */
export function createAuditGuard(audit: AuditLog, registry: Registry) {
  const recorded = new Set<string>();
  const missing = new Counter({
    name: 'thamani_audit_missing_total',
    help: 'Successful state-changing requests that left no audit entry (should stay 0)',
    labelNames: ['route'],
    registers: [registry],
  });
  const tracked: AuditLog = {
    ...audit,
    async record(entry, tx) {
      const result = await audit.record(entry, tx);
      if (entry.requestId) recorded.add(entry.requestId);
      return result;
    },
  };
  return {
    audit: tracked,
    install(app: FastifyInstance): void {
      app.addHook('onResponse', (request, reply, done) => {
        const had = recorded.delete(request.id);
        if (
          STATE_CHANGING.has(request.method) &&
          request.principal &&
          reply.statusCode < 300 &&
          !had
        ) {
          const route = request.routeOptions.url ?? request.url;
          missing.inc({ route: `${request.method} ${route}` });
          request.log.error({ route }, 'state-changing request left no audit entry');
        }
        done();
      });
    },
    missing,
  };
}
