import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import { scopedServices } from '../api/scoped-services.ts';
import type { AuditLog } from '../audit/index.ts';
import type { Db } from '../db/client.ts';
import { asQueryable } from '../db/scoped.ts';
import type { Queryable } from '../db/timeseries.ts';
import type { FirmwareService } from './firmware-service.ts';

const sha = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in lower-case hex');
const target = z.union([
  z.object({ devices: z.array(z.string().max(64)).min(1).max(10_000) }),
  z.object({ unitId: z.uuid() }),
  z.object({ siteId: z.uuid() }),
  z.object({
    kind: z.enum(['biodigester', 'collection_point']),
    percent: z.number().min(0.1).max(100),
  }),
]);

/** Firmware registry and rollouts for technicians (docs/operations.md, "Firmware updates"). */
export function firmwareRoutes(deps: {
  db: Db;
  audit: AuditLog;
  firmware: FirmwareService;
  maxImageBytes: number;
}): FastifyPluginAsync {
  // The change and its audit entry commit together, in the caller's scope.
  const inScope = scopedServices(deps.db, (tx) => {
    const record: AuditLog['record'] = (entry) => deps.audit.record(entry, tx);
    return { q: asQueryable(tx), record };
  });
  const scoped = <T>(
    request: FastifyRequest,
    fn: (q: Queryable, record: AuditLog['record']) => Promise<T>,
  ) => inScope(request, ({ q, record }) => fn(q, record));

  return (root) => {
    const app = root.withTypeProvider<ZodTypeProvider>();
    const tags = ['firmware'];
    // The image is the request body, as is: no multipart, no base64.
    app.addContentTypeParser(
      'application/octet-stream',
      { parseAs: 'buffer', bodyLimit: deps.maxImageBytes },
      (_req, body, done) => done(null, body),
    );

    app.get(
      '/firmware/signing-key',
      {
        schema: {
          tags,
          summary: 'The Ed25519 public key manifests are signed with (part of the device contract)',
        },
      },
      () => ({
        algorithm: 'Ed25519',
        keyId: deps.firmware.keyId,
        publicKeyPem: deps.firmware.publicKeyPem,
      }),
    );

    app.post(
      '/firmware',
      {
        preHandler: app.requirePermission('firmware:write'),
        schema: {
          tags,
          summary:
            'Upload a firmware image (body: the bytes, application/octet-stream); immutable once stored',
          querystring: z.object({
            version: z.string().max(32),
            deviceKind: z.enum(['biodigester', 'collection_point']),
            hardwareRevision: z.string().max(64).optional(),
            releaseNotes: z.string().max(4000).optional(),
          }),
        },
      },
      async (request, reply) => {
        const image = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const made = await scoped(request, (q, record) =>
          deps.firmware.upload(q, { image, ...request.query }, auditActor(request), record),
        );
        return reply.status(201).send(made);
      },
    );

    app.get(
      '/firmware',
      {
        preHandler: app.requirePermission('firmware:read'),
        schema: { tags, summary: 'Uploaded images (without their bytes)' },
      },
      async (request) => ({ images: await scoped(request, (q) => deps.firmware.list(q)) }),
    );

    app.post(
      '/firmware/:sha256/approve',
      {
        preHandler: app.requirePermission('firmware:approve'),
        schema: {
          tags,
          summary: 'Approve a release (someone other than its uploader: four-eyes)',
          params: z.object({ sha256: sha }),
        },
      },
      (request) =>
        scoped(request, (q, record) =>
          deps.firmware.approve(q, request.params.sha256, auditActor(request), record),
        ),
    );

    app.post(
      '/firmware/rollouts',
      {
        preHandler: app.requirePermission('firmware:write'),
        schema: {
          tags,
          summary:
            'Roll an approved image out to devices, a unit, a site or a percentage of a kind, in waves',
          body: z.object({
            sha256: sha,
            target,
            waveSize: z.number().int().min(1).max(10_000).default(10),
            failureThreshold: z.number().min(0).max(1).default(0.2),
            allowDowngrade: z.boolean().default(false),
          }),
        },
      },
      async (request, reply) => {
        const made = await scoped(request, (q, record) =>
          deps.firmware.createRollout(q, request.body, auditActor(request), record),
        );
        void deps.firmware.tick();
        return reply.status(201).send(made);
      },
    );

    app.get(
      '/firmware/rollouts/:id',
      {
        preHandler: app.requirePermission('firmware:read'),
        schema: {
          tags,
          summary: 'A rollout and every device’s progress',
          params: z.object({ id: z.uuid() }),
        },
      },
      (request) => scoped(request, (q) => deps.firmware.rollout(q, request.params.id)),
    );

    for (const [verb, to] of [
      ['pause', 'paused'],
      ['resume', 'active'],
    ] as const) {
      app.post(
        `/firmware/rollouts/:id/${verb}`,
        {
          preHandler: app.requirePermission('firmware:write'),
          schema: {
            tags,
            summary: `${verb === 'pause' ? 'Pause' : 'Resume'} a rollout (audited)`,
            params: z.object({ id: z.uuid() }),
          },
        },
        async (request) => {
          const done = await scoped(request, (q, record) =>
            deps.firmware.setRolloutStatus(q, request.params.id, to, auditActor(request), record),
          );
          if (to === 'active') void deps.firmware.tick();
          return done;
        },
      );
    }
    return Promise.resolve();
  };
}
