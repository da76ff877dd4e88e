import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import type { AuditLog } from '../audit/index.ts';
import { can } from '../auth/permissions.ts';
import type { Db } from '../db/client.ts';
import { asQueryable } from '../db/scoped.ts';
import type { FirmwareService } from '../firmware/firmware-service.ts';
import type { DashboardQueries } from './dashboard-repo.ts';
import { firmwareForms, firmwareOverview } from './firmware-pages.ts';
import { adminScope } from './technician-admin-routes.ts';
import { createKit, formList as list, formOn as on, installTechErrors } from './technician-kit.ts';

/**
 * Firmware in the browser: upload (the file's bytes as the body, as POST /api/v1/firmware),
 * approve (four-eyes, refused by the service for the uploader), roll out, pause and resume;
 * the same service calls and audit entries as firmware/firmware-routes.ts.
 */
export function technicianFirmwareRoutes(deps: {
  db: Db;
  audit: AuditLog;
  queries: DashboardQueries;
  firmware: { service: FirmwareService; maxImageBytes: number };
  timeZone?: string;
}): FastifyPluginAsync {
  const kit = createKit(deps.timeZone);
  const { scoped, unitOptions } = adminScope(deps);
  return (root) => {
    const app = root.withTypeProvider<ZodTypeProvider>();
    installTechErrors(app, kit);
    const hide = { hide: true };
    const fw = deps.firmware;
    if (fw) {
      app.addContentTypeParser(
        'application/octet-stream',
        { parseAs: 'buffer', bodyLimit: fw.maxImageBytes },
        (_req, body, done) => done(null, body),
      );
      const firmwareView = async (request: FastifyRequest, result: string) => {
        const f = kit.fmt(request);
        const p = request.principal!;
        const { releases, rollouts } = await scoped(request, async (s) => ({
          releases: await deps.queries.firmwareReleases(s.tx),
          rollouts: await deps.queries.firmwareRollouts(s.tx),
        }));
        const units = await unitOptions(request);
        return {
          title: f.t('nav.firmware'),
          active: '/firmware',
          body:
            firmwareForms(
              releases,
              rollouts,
              units,
              { write: can(p.role, 'firmware:write'), approve: can(p.role, 'firmware:approve') },
              f,
              result,
            ) + firmwareOverview(releases, rollouts, f),
        };
      };
      const inScope = <T>(
        request: FastifyRequest,
        fn: (q: ReturnType<typeof asQueryable>, record: AuditLog['record']) => Promise<T>,
      ) => scoped(request, (s) => fn(asQueryable(s.tx), s.record));

      app.post(
        '/manage/firmware',
        {
          schema: {
            ...hide,
            querystring: z.object({
              version: z.string().max(32),
              deviceKind: z.enum(['biodigester', 'collection_point']),
              hardwareRevision: z.string().max(64).optional(),
              releaseNotes: z.string().max(4000).optional(),
            }),
          },
          preHandler: app.requirePermission('firmware:write'),
        },
        async (request, reply) => {
          const image = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
          const q = request.query;
          const made = await inScope(request, (db, record) =>
            fw.service.upload(
              db,
              {
                image,
                version: q.version,
                deviceKind: q.deviceKind,
                hardwareRevision: q.hardwareRevision || undefined,
                releaseNotes: q.releaseNotes || undefined,
              },
              auditActor(request),
              record,
            ),
          );
          const f = kit.fmt(request);
          return kit.page(
            request,
            reply,
            await firmwareView(request, f.t('tech.fw.uploaded', { version: made.version })),
          );
        },
      );
      app.post(
        '/manage/firmware/:sha256/approve',
        {
          schema: { ...hide, params: z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/) }) },
          preHandler: app.requirePermission('firmware:approve'),
        },
        async (request, reply) => {
          await inScope(request, (q, record) =>
            fw.service.approve(q, request.params.sha256, auditActor(request), record),
          );
          const f = kit.fmt(request);
          return kit.page(request, reply, await firmwareView(request, f.t('tech.fw.approved')));
        },
      );
      app.post(
        '/manage/firmware/rollouts',
        {
          schema: {
            ...hide,
            body: z.object({
              sha256: z.string().regex(/^[0-9a-f]{64}$/),
              percent: z.union([z.literal(''), z.coerce.number().min(0.1).max(100)]).optional(),
              unitId: z.union([z.literal(''), z.uuid()]).optional(),
              devices: z.string().max(4000).optional(),
              waveSize: z
                .string()
                .default('10')
                .pipe(z.coerce.number<string>().int().min(1).max(10_000)),
              failurePercent: z
                .string()
                .default('20')
                .pipe(z.coerce.number<string>().min(0).max(100)),
              allowDowngrade: z.string().optional(),
            }),
          },
          preHandler: app.requirePermission('firmware:write'),
        },
        async (request, reply) => {
          const b = request.body;
          const made = await scoped(request, async (s) => {
            const devices = list(b.devices);
            const img = (await deps.queries.firmwareReleases(s.tx)).find(
              (r) => r.sha256 === b.sha256,
            );
            // One target: the devices named, else the unit, else a share of the release's kind.
            const target = devices.length
              ? { devices }
              : b.unitId
                ? { unitId: b.unitId }
                : {
                    kind: (img?.deviceKind ?? 'biodigester') as 'biodigester' | 'collection_point',
                    percent: b.percent || 100,
                  };
            return fw.service.createRollout(
              asQueryable(s.tx),
              {
                sha256: b.sha256,
                target,
                waveSize: b.waveSize,
                failureThreshold: b.failurePercent / 100,
                allowDowngrade: on(b.allowDowngrade),
              },
              auditActor(request),
              s.record,
            );
          });
          void fw.service.tick();
          return reply.redirect(`/firmware/rollouts/${made.id}`, 303);
        },
      );
      for (const [verb, to] of [
        ['pause', 'paused'],
        ['resume', 'active'],
      ] as const)
        app.post(
          `/manage/firmware/rollouts/:id/${verb}`,
          {
            schema: { ...hide, params: z.object({ id: z.uuid() }) },
            preHandler: app.requirePermission('firmware:write'),
          },
          async (request, reply) => {
            await inScope(request, (q, record) =>
              fw.service.setRolloutStatus(q, request.params.id, to, auditActor(request), record),
            );
            if (to === 'active') void fw.service.tick();
            return reply.redirect(`/firmware/rollouts/${request.params.id}`, 303);
          },
        );
    }
    return Promise.resolve();
  };
}
