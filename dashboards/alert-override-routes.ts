import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import { scopedServices } from '../api/scoped-services.ts';
import type { AuditLog } from '../audit/index.ts';
import type { Db } from '../db/client.ts';
import type { DbExecutor } from '../db/scoped.ts';
import { createAlertOperator } from './alert-operator-service.ts';
import type { RulesChangedSink } from './alert-service.ts';
import type { LiveHub } from './live-hub.ts';

/**
 * Per-unit thresholds over HTTP: a unit's effective rules (whoever may see the unit), one
 * rule's override set or removed (`alerts:configure`, as PUT /alert-rules/{id}). Each change and
 * its audit entry (before and after) commit in the caller's scoped transaction, where the
 * database refuses the write to anyone whose role does not see the whole fleet.
 */
export function alertOverrideRoutes(deps: {
  db: Db;
  audit: AuditLog;
  hub: LiveHub;
  alerts?: RulesChangedSink;
}): FastifyPluginAsync {
  const operator = createAlertOperator(deps);
  const scoped = scopedServices(deps.db, (tx): DbExecutor => tx);
  const params = z.object({
    unitId: z.uuid({ error: 'must be a unit id (UUID)' }),
    ruleId: z.string().min(1).max(100),
  });
  return (root) => {
    const app = root.withTypeProvider<ZodTypeProvider>();
    const tags = ['dashboards'];

    app.get(
      '/units/:unitId/alert-rules',
      {
        preHandler: app.requirePermission('alerts:read'),
        schema: {
          tags,
          summary: 'The alert rules in force for one unit: the kind’s, or its own thresholds',
          params: params.pick({ unitId: true }),
        },
      },
      (request) => scoped(request, (tx) => operator.unitRules(tx, request.params.unitId)),
    );

    app.put(
      '/units/:unitId/alert-rules/:ruleId',
      {
        preHandler: app.requirePermission('alerts:configure'),
        schema: {
          tags,
          summary: 'Set one unit’s own thresholds for a rule of its kind (audited)',
          params,
          body: z.object({
            warn: z.number().finite(),
            critical: z.number().finite().nullable(),
            clear: z.number().finite(),
            enabled: z.boolean(),
          }),
        },
      },
      (request) =>
        scoped(request, (tx) =>
          operator.setOverride(tx, {
            ...request.params,
            thresholds: request.body,
            actor: auditActor(request),
          }),
        ),
    );

    app.delete(
      '/units/:unitId/alert-rules/:ruleId',
      {
        preHandler: app.requirePermission('alerts:configure'),
        schema: {
          tags,
          summary: 'Remove a unit’s own thresholds: it follows the kind’s rule again (audited)',
          params,
        },
      },
      (request) =>
        scoped(request, (tx) =>
          operator.removeOverride(tx, { ...request.params, actor: auditActor(request) }),
        ),
    );

    return Promise.resolve();
  };
}
