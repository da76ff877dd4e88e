import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor as actorOf } from '../api/audit-context.ts';
import type { QuarantineService } from './quarantine-service.ts';
import type { ScopedServices } from '../api/scoped-services.ts';

/** Quarantine (technicians): what ingest refused, and its replay. */
export function ingestRoutes(deps: {
  quarantine: ScopedServices<QuarantineService>;
}): FastifyPluginAsync {
  return (root) => {
    const app = root.withTypeProvider<ZodTypeProvider>();
    app.get(
      '/quarantine',
      {
        preHandler: app.requirePermission('quarantine:read'),
        schema: {
          querystring: z.object({
            deviceId: z.string().optional(),
            status: z.enum(['open', 'replayed', 'discarded']).optional(),
            before: z.coerce.number().int().positive().optional(),
            reason: z.string().max(64).optional(),
            limit: z.coerce.number().int().min(1).max(500).default(50),
          }),
        },
      },
      async (request) => {
        const items = await deps.quarantine(request, (q) => q.list(request.query));
        return { items, next: items.length === request.query.limit ? items.at(-1)?.id : undefined };
      },
    );
    app.post(
      '/quarantine/:id/replay',
      {
        preHandler: app.requirePermission('quarantine:replay'),
        schema: { params: z.object({ id: z.coerce.number().int().positive() }) },
      },
      async (request) =>
        deps.quarantine(request, (q) => q.replay(request.params.id, actorOf(request))),
    );
    app.post(
      '/quarantine/:id/discard',
      {
        preHandler: app.requirePermission('quarantine:replay'),
        schema: { params: z.object({ id: z.coerce.number().int().positive() }) },
      },
      async (request) =>
        deps.quarantine(request, (q) => q.discard(request.params.id, actorOf(request))),
    );
    return Promise.resolve();
  };
}
