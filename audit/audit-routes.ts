import { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { KeyObject } from 'node:crypto';
import type { DbExecutor } from '../db/scoped.ts';
import type { ScopedServices } from '../api/scoped-services.ts';
import { readCheckpointFiles } from './audit-checkpoint-files.ts';
import { exportAudit, listAudit } from './audit-query.ts';
import { verifyAuditChain } from './audit-verify.ts';

const filter = z.object({
  actorId: z.string().max(200).optional(),
  action: z.string().max(100).optional(),
  targetType: z.string().max(100).optional(),
  targetId: z.string().max(200).optional(),
  from: z.coerce.date().optional(),
  to: z.coerce.date().optional(),
});

const entry = z.object({
  id: z.number(),
  seq: z.number(),
  at: z.string(),
  actorId: z.string(),
  actorRole: z.string(),
  /** What the actor is called now (a person's name, "erased user #41", "API token ci"). */
  actorName: z.string(),
  /** Where the request came from, while kept (SIGNIN_METADATA_RETENTION_DAYS); not signed. */
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  requestId: z.string().nullable(),
  action: z.string(),
  targetType: z.string(),
  targetId: z.string().nullable(),
  before: z.unknown(),
  after: z.unknown(),
  prevHash: z.string(),
  hash: z.string(),
  keyId: z.string().nullable(),
  signature: z.string().nullable(),
});

const verifyResult = z.object({
  ok: z.boolean(),
  checked: z.number(),
  head: z.object({ seq: z.number(), id: z.number().nullable(), hash: z.string() }).nullable(),
  legacy: z.number(),
  checkpoints: z.object({
    checked: z.number(),
    latest: z.object({ size: z.number(), at: z.string() }).nullable(),
  }),
  firstBroken: z
    .object({ seq: z.number(), id: z.number().nullable(), reason: z.string() })
    .optional(),
  badCheckpoints: z.array(z.object({ source: z.string(), reason: z.string() })).optional(),
});

/**
 * /api/v1/audit: read, verify and export the audit store (read-only; it is append-only anyway).
 * Verification trusts `publicKeys` (the audit signing key's) and the checkpoints in `checkpointDir`.
 */
export function auditRoutes(deps: {
  scoped: ScopedServices<DbExecutor>;
  publicKeys: Map<string, KeyObject>;
  checkpointDir?: string | undefined;
}): FastifyPluginAsync {
  return (base) => {
    const app = base.withTypeProvider<ZodTypeProvider>();
    const read = app.requirePermission('audit:read');

    app.get(
      '/audit',
      {
        preHandler: read,
        schema: {
          tags: ['audit'],
          summary: 'Audit entries, newest first (filter, keyset pagination)',
          querystring: filter.extend({
            limit: z.coerce.number().int().min(1).max(500).default(100),
            beforeId: z.coerce.number().int().positive().optional(),
          }),
          response: {
            200: z.object({ entries: z.array(entry), nextBeforeId: z.number().nullable() }),
          },
        },
      },
      async (request) => {
        const { limit, beforeId, ...f } = request.query;
        return deps.scoped(request, (db) => listAudit(db, f, { limit, beforeId }));
      },
    );

    app.get(
      '/audit/verify',
      {
        preHandler: read,
        schema: {
          tags: ['audit'],
          summary:
            'Verify signatures, hash links, positions, time order and the signed checkpoints; report the first broken entry',
          response: { 200: verifyResult },
        },
      },
      async (request) => {
        const checkpoints = deps.checkpointDir ? await readCheckpointFiles(deps.checkpointDir) : [];
        return deps.scoped(request, (db) =>
          verifyAuditChain(db, { publicKeys: deps.publicKeys, checkpoints }),
        );
      },
    );

    app.get(
      '/audit/export',
      {
        preHandler: read,
        schema: {
          tags: ['audit'],
          summary:
            'All matching entries in chain order, as NDJSON (one JSON object a line); unfiltered, what thamani-audit-verify checks offline',
          querystring: filter,
        },
      },
      (request, reply) => {
        const lines = (async function* () {
          for await (const e of exportAudit((fn) => deps.scoped(request, fn), request.query))
            yield `${JSON.stringify(e)}\n`;
        })();
        return reply
          .type('application/x-ndjson')
          .header('content-disposition', 'attachment; filename="thamani-audit.ndjson"')
          .send(Readable.from(lines));
      },
    );
    return Promise.resolve();
  };
}
