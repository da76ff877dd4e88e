import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import type { ScopedServices } from '../api/scoped-services.ts';
import { deviceKinds } from '../devices/metrics.ts';
import { commandInput, type CommandService } from './command-service.ts';
import type { CommandRow } from './config-repo.ts';
import type { DeviceConfigService } from './config-service.ts';

const deviceId = z.object({ id: z.string().min(1).max(64) });
/** A partial configuration; checked against the device kind's schema by the service (CONFIG_INVALID). */
const partial = z
  .object({
    reportingIntervalS: z.number().int().optional(),
    calibration: z
      .record(z.string(), z.object({ offset: z.number(), gain: z.number() }))
      .optional(),
    alarms: z
      .record(z.string(), z.object({ min: z.number().optional(), max: z.number().optional() }))
      .optional(),
    timeSyncServer: z.string().optional(),
  })
  .loose();

export function commandView(c: CommandRow) {
  return {
    id: c.id,
    deviceId: c.device_id,
    command: c.command,
    params: c.params,
    status: c.status,
    result: c.result,
    error: c.error,
    createdBy: c.created_by,
    createdAt: c.created_at.toISOString(),
    expiresAt: c.expires_at.toISOString(),
    sentAt: c.sent_at?.toISOString() ?? null,
    completedAt: c.completed_at?.toISOString() ?? null,
  };
}

/**
 * Remote configuration and commands (docs/operations.md, "Remote configuration"): technicians
 * and admins (`devices:configure`), in the caller's verified scope, where row-level security
 * refuses every other role again (migration 0028).
 */
export function deviceConfigRoutes(deps: {
  services: ScopedServices<{ config: DeviceConfigService; commands: CommandService }>;
}): FastifyPluginAsync {
  return (root) => {
    const app = root.withTypeProvider<ZodTypeProvider>();
    const run = deps.services;
    const tags = ['device configuration'];
    const perm = app.requirePermission('devices:configure');

    app.get(
      '/devices/:id/config',
      {
        preHandler: perm,
        schema: {
          tags,
          summary: 'Desired and reported configuration, and whether the device is in sync',
          params: deviceId,
        },
      },
      (request) => run(request, (s) => s.config.get(request.params.id)),
    );
    app.put(
      '/devices/:id/config',
      {
        preHandler: perm,
        schema: {
          tags,
          summary:
            "Replace the device's own overrides (merged over its unit's and kind's defaults); a new version goes out (audited)",
          params: deviceId,
          body: z.object({ overrides: partial }),
        },
      },
      (request) =>
        run(request, (s) =>
          s.config.setOverrides(request.params.id, request.body.overrides, auditActor(request)),
        ),
    );
    app.put(
      '/device-kinds/:kind/config',
      {
        preHandler: perm,
        schema: {
          tags,
          summary:
            'Defaults of every device of a kind (audited; each device affected gets a new version)',
          params: z.object({ kind: z.enum(deviceKinds) }),
          body: z.object({ defaults: partial }),
        },
      },
      (request) =>
        run(request, (s) =>
          s.config.setDefaults(
            { kind: request.params.kind, unitId: null },
            request.body.defaults,
            auditActor(request),
          ),
        ),
    );
    app.put(
      '/units/:unitId/config',
      {
        preHandler: perm,
        schema: {
          tags,
          summary:
            'Defaults of the devices of one unit (audited; each device affected gets a new version)',
          params: z.object({ unitId: z.uuid() }),
          body: z.object({ kind: z.enum(deviceKinds), defaults: partial }),
        },
      },
      (request) =>
        run(request, (s) =>
          s.config.setDefaults(
            { kind: request.body.kind, unitId: request.params.unitId },
            request.body.defaults,
            auditActor(request),
          ),
        ),
    );
    app.post(
      '/devices/:id/commands',
      {
        preHandler: perm,
        schema: {
          tags,
          summary:
            'Send a command (reboot, resend since an instant, diagnostics); it waits for an offline device until timeoutS',
          params: deviceId,
          body: commandInput,
        },
      },
      async (request, reply) => {
        const row = await run(request, (s) =>
          s.commands.create(request.params.id, request.body, auditActor(request)),
        );
        return reply.status(201).send(commandView(row));
      },
    );
    app.get(
      '/devices/:id/commands',
      {
        preHandler: perm,
        schema: {
          tags,
          summary: 'The last 20 commands to a device, newest first',
          params: deviceId,
        },
      },
      async (request) => ({
        commands: (await run(request, (s) => s.commands.list(request.params.id))).map(commandView),
      }),
    );
    app.get(
      '/commands/:id',
      {
        preHandler: perm,
        schema: { tags, summary: 'One command and its result', params: z.object({ id: z.uuid() }) },
      },
      async (request) => commandView(await run(request, (s) => s.commands.get(request.params.id))),
    );
    return Promise.resolve();
  };
}
