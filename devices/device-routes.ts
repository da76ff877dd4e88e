import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor as actorOf } from '../api/audit-context.ts';
import { deviceKinds } from './metrics.ts';
import type { DeviceService } from './device-service.ts';
import type { ScopedServices } from '../api/scoped-services.ts';

const labels = z
  .record(z.string().max(64), z.string().max(256))
  .refine((l) => Object.keys(l).length <= 32, 'at most 32 labels');
const status = z.enum(['pending', 'active', 'suspended', 'retired']);

/** Sites, units and the device registry. */
export function deviceRoutes(deps: { devices: ScopedServices<DeviceService> }): FastifyPluginAsync {
  return (root) => {
    const app = root.withTypeProvider<ZodTypeProvider>();
    const run = deps.devices;

    app.get('/sites', { preHandler: app.requirePermission('sites:read') }, async (request) => ({
      sites: await run(request, (svc) => svc.listSites()),
    }));
    app.post(
      '/sites',
      {
        preHandler: app.requirePermission('sites:write'),
        schema: {
          body: z.object({
            name: z.string().trim().min(2).max(120),
            county: z.string().trim().max(80).optional(),
          }),
        },
      },
      async (request, reply) =>
        reply
          .status(201)
          .send(await run(request, (svc) => svc.addSite(request.body, actorOf(request)))),
    );

    app.get(
      '/units',
      {
        preHandler: app.requirePermission('sites:read'),
        schema: { querystring: z.object({ site: z.string().optional() }) },
      },
      async (request) => ({ units: await run(request, (svc) => svc.listUnits(request.query)) }),
    );
    app.post(
      '/units',
      {
        preHandler: app.requirePermission('sites:write'),
        schema: {
          body: z.object({
            site: z.string().min(1),
            kind: z.enum(deviceKinds),
            name: z.string().trim().min(1).max(120),
          }),
        },
      },
      async (request, reply) =>
        reply
          .status(201)
          .send(await run(request, (svc) => svc.addUnit(request.body, actorOf(request)))),
    );

    app.get(
      '/devices',
      {
        preHandler: app.requirePermission('devices:read'),
        schema: {
          querystring: z.object({
            site: z.string().optional(),
            unit: z.string().optional(),
            status: status.optional(),
            kind: z.enum(deviceKinds).optional(),
          }),
        },
      },
      async (request) => ({ devices: await run(request, (svc) => svc.list(request.query)) }),
    );
    app.get(
      '/devices/:id',
      {
        preHandler: app.requirePermission('devices:read'),
        schema: { params: z.object({ id: z.string() }) },
      },
      async (request) => run(request, (svc) => svc.get(request.params.id)),
    );
    app.get(
      '/devices/:id/latest',
      {
        preHandler: app.requirePermission('readings:read'),
        schema: { params: z.object({ id: z.string() }) },
      },
      async (request) => ({
        deviceId: request.params.id,
        latest: await run(request, (svc) => svc.latest(request.params.id)),
      }),
    );
    app.post(
      '/devices',
      {
        preHandler: app.requirePermission('devices:write'),
        schema: {
          body: z.object({
            id: z.string().optional(),
            unit: z.string().min(1),
            site: z.string().optional(),
            kind: z.enum(deviceKinds).optional(),
            labels: labels.optional(),
            hardwareRevision: z.string().max(64).optional(),
          }),
        },
      },
      async (request, reply) =>
        reply
          .status(201)
          .send(await run(request, (svc) => svc.addDevice(request.body, actorOf(request)))),
    );
    app.patch(
      '/devices/:id',
      {
        preHandler: app.requirePermission('devices:write'),
        schema: {
          params: z.object({ id: z.string() }),
          body: z
            .object({ status: status.optional(), labels: labels.optional() })
            .refine((b) => b.status ?? b.labels, 'give status or labels'),
        },
      },
      async (request) =>
        run(request, async (svc) => {
          let device = await svc.get(request.params.id);
          if (request.body.status)
            device = await svc.setStatus(request.params.id, request.body.status, actorOf(request));
          if (request.body.labels)
            device = await svc.updateLabels(
              request.params.id,
              request.body.labels,
              actorOf(request),
            );
          return device;
        }),
    );
    return Promise.resolve();
  };
}
