import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import type { ScopedServices } from '../api/scoped-services.ts';
import type { MrvService } from './mrv-service.ts';
import type { MrvSigner } from './mrv-signer.ts';
import { scopedStream } from './scoped-stream.ts';

const tags = ['mrv'];

/**
 * `/.well-known/thamani-mrv-key`: the public key MRV reports are signed with, for anyone (a
 * verification body pins it; `thamani mrv key` prints the same). Mounted at the root.
 */
export function mrvKeyRoute(deps: {
  signer: Pick<MrvSigner, 'keyId' | 'publicKeyPem'>;
}): FastifyPluginAsync {
  return (app) => {
    app.get(
      '/.well-known/thamani-mrv-key',
      {
        schema: {
          tags,
          summary: 'The Ed25519 public key (PEM) MRV reports are signed with; X-Key-Id names it',
        },
      },
      (_req, reply) =>
        reply
          .type('application/x-pem-file')
          .header('x-key-id', deps.signer.keyId)
          .send(deps.signer.publicKeyPem),
    );
    return Promise.resolve();
  };
}

type ReadService = Pick<MrvService, 'list' | 'download' | 'exportReadings'>;

/**
 * /api/v1/mrv: issued reports, read-only, for the `auditor` role (and admins) through the
 * `audit:read` permission, in the caller's verified scope (row-level security on mrv_reports and
 * the archive, migration 0031). Every download of a report or of its readings is audited.
 */
export function mrvRoutes(deps: { mrv: ScopedServices<ReadService> }): FastifyPluginAsync {
  return (base) => {
    const app = base.withTypeProvider<ZodTypeProvider>();
    const read = app.requirePermission('audit:read');
    const id = z.object({ id: z.uuid() });

    app.get(
      '/mrv/reports',
      {
        preHandler: read,
        schema: {
          tags,
          summary: 'Issued MRV reports, newest period first',
          querystring: z.object({ unitId: z.uuid().optional() }),
        },
      },
      async (request) => ({
        reports: (await deps.mrv(request, (s) => s.list(request.query.unitId))).map((r) => ({
          ...r,
          periodStart: r.periodStart.toISOString(),
          periodEnd: r.periodEnd.toISOString(),
          issuedAt: r.issuedAt.toISOString(),
        })),
      }),
    );

    app.get(
      '/mrv/reports/:id',
      {
        preHandler: read,
        schema: {
          tags,
          summary: 'The signed report document exactly as issued (audited download)',
          params: id,
        },
      },
      async (request, reply) =>
        reply
          .type('application/json')
          .header(
            'content-disposition',
            `attachment; filename="mrv-report-${request.params.id}.json"`,
          )
          .send(await deps.mrv(request, (s) => s.download(request.params.id, auditActor(request)))),
    );

    app.get(
      '/mrv/reports/:id/readings.csv',
      {
        preHandler: read,
        schema: {
          tags,
          summary:
            'The raw readings behind a report, the CSV `thamani mrv verify --readings` recomputes the root from (audited download)',
          params: id,
        },
      },
      async (request, reply) => {
        // The first line is pulled before answering, so that an unknown report is a 404, not a broken stream.
        const stream = await scopedStream<ReadService>(
          (fn) => deps.mrv(request, fn),
          (s) => s.exportReadings(request.params.id, auditActor(request)),
        );
        return reply
          .type('text/csv; charset=utf-8')
          .header(
            'content-disposition',
            `attachment; filename="mrv-readings-${request.params.id}.csv"`,
          )
          .send(stream);
      },
    );
    return Promise.resolve();
  };
}
