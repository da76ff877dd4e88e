import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import type { ScopedServices } from '../api/scoped-services.ts';
import { MrvError } from './mrv-errors.ts';
import type { VerifierTokenInfo } from './verifier-repo.ts';
import { MAX_VERIFIER_DAYS, type VerifierAdmin } from './verifier-service.ts';

const tags = ['mrv'];

const tokenOut = (t: VerifierTokenInfo) => ({
  id: t.id,
  name: t.name,
  unitIds: t.unitIds,
  periodFrom: t.periodFrom.toISOString(),
  periodTo: t.periodTo.toISOString(),
  expiresAt: t.expiresAt.toISOString(),
  createdBy: t.createdBy,
  createdAt: t.createdAt.toISOString(),
  revokedAt: t.revokedAt?.toISOString() ?? null,
});

const month = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'a month, YYYY-MM');

/**
 * /api/v1/mrv/verifiers: verifier tokens over HTTP, what `thamani mrv verifier create|list|revoke`
 * does on the server. Admins only: the permission `users:write` (credentials, like API tokens) at
 * the route, and the definer functions of migration 0037 admit only an admin's verified scope.
 * The secret is in the creation's answer only; every creation and revocation is audited.
 */
export function verifierAdminRoutes(deps: {
  admin: ScopedServices<VerifierAdmin>;
}): FastifyPluginAsync {
  return (base) => {
    const app = base.withTypeProvider<ZodTypeProvider>();
    const admin = app.requirePermission('users:write');

    app.post(
      '/mrv/verifiers',
      {
        preHandler: admin,
        schema: {
          tags,
          summary: 'Create a verifier token; its secret is in this answer only',
          body: z.strictObject({
            name: z.string().min(1).max(200),
            units: z.array(z.string().min(1).max(200)).min(1).max(1000),
            from: month,
            to: month.optional(),
            days: z.int().min(1).max(MAX_VERIFIER_DAYS).default(30),
          }),
        },
      },
      async (request, reply) => {
        const b = request.body;
        const { secret, token } = await deps.admin(request, (s) =>
          s.create(
            {
              name: b.name,
              units: b.units,
              fromMonth: b.from,
              toMonth: b.to ?? b.from,
              days: b.days,
            },
            auditActor(request),
          ),
        );
        return reply
          .code(201)
          .header('cache-control', 'no-store')
          .send({ secret, ...tokenOut(token) });
      },
    );

    app.get(
      '/mrv/verifiers',
      {
        preHandler: admin,
        schema: { tags, summary: 'Verifier tokens, newest first (never their secrets)' },
      },
      async (request) => ({
        tokens: (await deps.admin(request, (s) => s.list())).map(tokenOut),
      }),
    );

    app.post(
      '/mrv/verifiers/:id/revoke',
      {
        preHandler: admin,
        schema: {
          tags,
          summary: 'End a verifier token now: its next request is refused',
          params: z.object({ id: z.uuid() }),
        },
      },
      async (request) => {
        const done = await deps.admin(request, (s) =>
          s.revoke(request.params.id, auditActor(request)),
        );
        if (!done) throw new MrvError.VERIFIER_NOT_FOUND(request.params.id);
        return { id: request.params.id, revoked: true };
      },
    );
    return Promise.resolve();
  };
}
