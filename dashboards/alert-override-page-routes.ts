import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import { scopedServices } from '../api/scoped-services.ts';
import type { AuditLog } from '../audit/index.ts';
import type { Db } from '../db/client.ts';
import type { DbExecutor } from '../db/scoped.ts';
import { createAlertOperator } from './alert-operator-service.ts';
import type { ThresholdProblem } from './alert-override-fns.ts';
import { problemNotice, unitRulesPage } from './alert-override-pages.ts';
import { alertTitle } from './alert-pages.ts';
import type { RulesChangedSink } from './alert-service.ts';
import type { LiveHub } from './live-hub.ts';
import type { Kit } from './technician-kit.ts';
import { formOn as on } from './technician-kit.ts';
import { notice } from './technician-pages.ts';

/**
 * One unit's alert thresholds in the browser (`alerts:configure`): the same operator and audit
 * entries as PUT/DELETE /api/v1/units/{id}/alert-rules/{rule}. Refused thresholds come back as
 * the same page (400) with the reason in the reader's language.
 */
export function alertOverridePageRoutes(deps: {
  db: Db;
  audit: AuditLog;
  hub: LiveHub;
  alerts?: RulesChangedSink;
  kit: Kit;
}): FastifyPluginAsync {
  const { kit } = deps;
  const operator = createAlertOperator(deps);
  const scoped = scopedServices(deps.db, (tx): DbExecutor => tx);
  const hide = { hide: true };
  const num = z.string().trim().min(1).pipe(z.coerce.number<string>());
  const params = z.object({
    unitId: z.uuid({ error: 'not a unit id' }),
    ruleId: z.string().min(1).max(100),
  });

  const view = async (
    request: FastifyRequest,
    reply: FastifyReply,
    unitId: string,
    result = '',
    status = 200,
  ) => {
    const f = kit.fmt(request);
    const { unit, rules } = await scoped(request, (tx) => operator.unitRules(tx, unitId));
    return kit.page(request, reply, {
      title: f.t('rules.unit.title', { name: unit.name }),
      active: '/manage',
      status,
      body: unitRulesPage(unit, rules, f, result),
    });
  };

  return (root) => {
    const app = root.withTypeProvider<ZodTypeProvider>();
    const preHandler = app.requirePermission('alerts:configure');

    // The picker on /manage/rules is a GET form: it lands on the unit's own page.
    app.get(
      '/manage/rules/units',
      { schema: { ...hide, querystring: z.object({ unit: params.shape.unitId }) }, preHandler },
      (request, reply) => reply.redirect(`/manage/rules/units/${request.query.unit}`, 303),
    );

    app.get(
      '/manage/rules/units/:unitId',
      { schema: { ...hide, params: params.pick({ unitId: true }) }, preHandler },
      (request, reply) => view(request, reply, request.params.unitId),
    );

    app.post(
      '/manage/rules/units/:unitId/:ruleId',
      {
        schema: {
          ...hide,
          params,
          body: z.object({
            warn: num,
            critical: z.string().trim().max(40).optional(),
            clear: num,
            enabled: z.string().optional(),
          }),
        },
        preHandler,
      },
      async (request, reply) => {
        const { unitId, ruleId } = request.params;
        const f = kit.fmt(request);
        try {
          const critical = request.body.critical ? num.parse(request.body.critical) : null;
          await scoped(request, (tx) =>
            operator.setOverride(tx, {
              unitId,
              ruleId,
              thresholds: {
                warn: request.body.warn,
                critical,
                clear: request.body.clear,
                enabled: on(request.body.enabled),
              },
              actor: auditActor(request),
            }),
          );
        } catch (err) {
          const problem = (err as { problem?: ThresholdProblem }).problem;
          if (!problem) throw err;
          const rule = await scoped(request, (tx) => operator.unitRules(tx, unitId));
          const title = rule.rules.find((r) => r.id === ruleId)?.title ?? ruleId;
          return view(
            request,
            reply,
            unitId,
            problemNotice(problem, { id: ruleId, title }, f),
            400,
          );
        }
        const { unit, rules } = await scoped(request, (tx) => operator.unitRules(tx, unitId));
        const r = rules.find((x) => x.id === ruleId);
        return view(
          request,
          reply,
          unitId,
          notice(
            f.t('rules.unit.saved', {
              unit: unit.name,
              rule: alertTitle({ ruleId, title: r?.title ?? ruleId }, f.t),
            }),
          ),
        );
      },
    );

    app.post(
      '/manage/rules/units/:unitId/:ruleId/remove',
      { schema: { ...hide, params }, preHandler },
      async (request, reply) => {
        const { unitId, ruleId } = request.params;
        const f = kit.fmt(request);
        await scoped(request, (tx) =>
          operator.removeOverride(tx, { unitId, ruleId, actor: auditActor(request) }),
        );
        const { unit, rules } = await scoped(request, (tx) => operator.unitRules(tx, unitId));
        const r = rules.find((x) => x.id === ruleId);
        return view(
          request,
          reply,
          unitId,
          notice(
            f.t('rules.unit.removed', {
              unit: unit.name,
              rule: alertTitle({ ruleId, title: r?.title ?? ruleId }, f.t),
            }),
          ),
        );
      },
    );

    return Promise.resolve();
  };
}
