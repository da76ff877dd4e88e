import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import type { AuditLog } from '../audit/index.ts';
import type { Authenticator } from '../auth/principal.ts';
import type { Db } from '../db/client.ts';
import type { DbExecutor } from '../db/scoped.ts';
import { scopedServices } from '../api/scoped-services.ts';
import { metricNames, type MetricName } from '../devices/metrics.ts';
import { createAlertOperator } from './alert-operator-service.ts';
import { alertOverrideRoutes } from './alert-override-routes.ts';
import type { RulesChangedSink } from './alert-service.ts';
import { ranges, type DashboardQueries, type Range } from './dashboard-repo.ts';
import { DashboardErrors } from './dashboard-errors.ts';
import type { LiveEvent, LiveHub } from './live-hub.ts';

export interface DashboardDeps {
  db: Db;
  audit: AuditLog;
  queries: DashboardQueries;
  hub: LiveHub;
  alerts?: RulesChangedSink;
  authenticator: Authenticator;
  /** How often a live stream re-checks its session and the units it may see (default 60 s). */
  liveRecheckMs?: number;
}

const uuid = z.uuid({ error: 'must be a unit id (UUID)' });
const metricsParam = z
  .string()
  .default('temperature_c')
  .transform((s, ctx) => {
    const list = [...new Set(s.split(',').filter(Boolean))];
    const unknown = list.filter((m) => !(metricNames as string[]).includes(m));
    if (unknown.length > 0 || list.length === 0)
      ctx.addIssue({
        code: 'custom',
        message: `unknown metric(s): ${unknown.join(', ') || '(none)'}; known: ${metricNames.join(', ')}`,
      });
    return list as MetricName[];
  });
const FLEET_ROLES = new Set(['admin', 'technician']);

/** JSON for the dashboards' client script and for integrators: series, alerts, rules, fleet, live stream. */
export function dashboardRoutes(deps: DashboardDeps): FastifyPluginAsync {
  const operator = createAlertOperator(deps);
  // The services of a dashboard route are its scoped transaction itself (queries take it per call).
  const scoped = scopedServices(deps.db, (tx): DbExecutor => tx);
  /** A unit outside the caller's scope does not exist for them. */
  const visibleUnit = async (tx: DbExecutor, id: string): Promise<void> => {
    if (!(await deps.queries.unitVisible(tx, id))) throw new DashboardErrors.UnitNotFound(id);
  };

  return (root) => {
    const app = root.withTypeProvider<ZodTypeProvider>();
    const tags = ['dashboards'];
    // A unit's own thresholds (alerts:read to list, alerts:configure to change).
    void app.register(alertOverrideRoutes(deps));

    app.get(
      '/units/:id/series',
      {
        preHandler: app.requirePermission('readings:read'),
        schema: {
          tags,
          summary: 'Rollup series of a unit for a chart (hourly; daily for 1y)',
          params: z.object({ id: uuid }),
          querystring: z.object({
            range: z.enum(Object.keys(ranges) as [Range, ...Range[]]).default('24h'),
            metrics: metricsParam,
          }),
        },
      },
      (request) =>
        scoped(request, async (tx) => {
          await visibleUnit(tx, request.params.id);
          return deps.queries.series(
            tx,
            request.params.id,
            request.query.range,
            request.query.metrics,
          );
        }),
    );

    app.get(
      '/devices/:id/series',
      {
        preHandler: app.requirePermission('readings:read'),
        schema: {
          tags,
          summary: 'Rollup series of one device (its battery and signal on the device page)',
          params: z.object({ id: z.string().max(64) }),
          querystring: z.object({
            range: z.enum(Object.keys(ranges) as [Range, ...Range[]]).default('24h'),
            metrics: metricsParam,
          }),
        },
      },
      (request) =>
        scoped(request, async (tx) => {
          if (!(await deps.queries.deviceVisible(tx, request.params.id)))
            throw new DashboardErrors.DeviceNotFound(request.params.id);
          return deps.queries.deviceSeries(
            tx,
            request.params.id,
            request.query.range,
            request.query.metrics,
          );
        }),
    );

    app.get(
      '/units/:id/daily-gas',
      {
        preHandler: app.requirePermission('readings:read'),
        schema: {
          tags,
          summary: 'Biogas produced per local day (m³)',
          params: z.object({ id: uuid }),
          querystring: z.object({ days: z.coerce.number().int().min(1).max(90).default(7) }),
        },
      },
      (request) =>
        scoped(request, async (tx) => {
          await visibleUnit(tx, request.params.id);
          return {
            unitId: request.params.id,
            days: await deps.queries.dailyGas(tx, request.params.id, request.query.days),
          };
        }),
    );

    app.get(
      '/alerts',
      {
        preHandler: app.requirePermission('alerts:read'),
        schema: {
          tags,
          summary: 'Alerts (open first)',
          querystring: z.object({
            status: z.enum(['open', 'closed']).optional(),
            unitId: uuid.optional(),
            deviceId: z.string().max(64).optional(),
            limit: z.coerce.number().int().min(1).max(500).default(100),
          }),
        },
      },
      async (request) => ({
        alerts: await scoped(request, (tx) => deps.queries.alerts(tx, request.query)),
      }),
    );

    app.post(
      '/alerts/:id/ack',
      {
        preHandler: app.requirePermission('alerts:ack'),
        schema: {
          tags,
          summary: 'Acknowledge an alert with a note (audited)',
          params: z.object({ id: z.coerce.number().int().positive() }),
          body: z.object({ note: z.string().trim().min(1, 'say what was done').max(500) }),
        },
      },
      async (request, reply) => {
        const acked = await scoped(request, (tx) => {
          const actor = auditActor(request);
          return operator.acknowledge(tx, {
            id: request.params.id,
            note: request.body.note,
            displayName: request.principal?.displayName ?? actor.actorId,
            actor,
          });
        });
        // The alerts page's form posted without its script: back to the page, which says so.
        return plainForm(request) ? reply.redirect('/alerts?done=ack', 303) : acked;
      },
    );

    app.get(
      '/alert-rules',
      {
        preHandler: app.requirePermission('alerts:read'),
        schema: { tags, summary: 'Alert rules and their thresholds' },
      },
      async (request) => ({ rules: await scoped(request, (tx) => deps.queries.rules(tx)) }),
    );

    app.put(
      '/alert-rules/:id',
      {
        preHandler: app.requirePermission('alerts:configure'),
        schema: {
          tags,
          summary: 'Change a rule’s thresholds or switch it off (audited)',
          params: z.object({ id: z.string().max(100) }),
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
          operator.updateRule(tx, {
            id: request.params.id,
            thresholds: request.body,
            actor: auditActor(request),
          }),
        ),
    );

    app.get(
      '/fleet',
      {
        preHandler: app.requirePermission('dashboard:fleet'),
        schema: {
          tags,
          summary: 'Fleet health: every device with state, battery, signal, certificate expiry',
          querystring: z.object({
            kind: z.enum(['biodigester', 'collection_point']).optional(),
            site: z.string().max(200).optional(),
            state: z.enum(['online', 'offline', 'attention']).optional(),
            q: z.string().max(64).optional(),
          }),
        },
      },
      async (request) => ({
        devices: await scoped(request, (tx) => deps.queries.fleet(tx, request.query)),
      }),
    );

    app.get(
      '/live',
      {
        preHandler: app.requirePermission('readings:read'),
        // Opening (and EventSource's reconnecting) the stream is not the user's activity: a page
        // left open must not keep its session alive (issue 17 §2).
        config: { background: true },
        schema: {
          tags,
          summary:
            'Server-Sent Events: readings (coalesced), alerts, device presence, for what the caller may see',
        },
      },
      async (request, reply) => {
        const fleetWide = FLEET_ROLES.has(request.principal!.role);
        let visible: 'all' | ReadonlySet<string> = fleetWide
          ? 'all'
          : await scoped(request, (tx) => deps.queries.visibleUnits(tx));
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, {
          ...(reply.getHeaders() as Record<string, string>),
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
        });
        res.write('retry: 3000\n\n');
        const send = (event: LiveEvent): void =>
          void res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
        const unsubscribe = deps.hub.subscribe({ visible: () => visible, send });
        const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 20_000).unref();
        // A stream outlives its request: sign-out, a disabled user or a changed assignment ends or narrows it.
        const recheck = setInterval(() => {
          void (async () => {
            const principal = await deps.authenticator
              .authenticate(request, { renew: false })
              .catch(() => undefined);
            if (!principal) return res.end();
            if (!fleetWide)
              visible = await scoped(
                request,
                (tx) => deps.queries.visibleUnits(tx),
                principal.credential,
              );
          })().catch(() => res.end());
        }, deps.liveRecheckMs ?? 60_000).unref();
        res.on('close', () => {
          clearInterval(heartbeat);
          clearInterval(recheck);
          unsubscribe();
        });
      },
    );

    return Promise.resolve();
  };
}

/** A browser's own form post (no script): it gets a page back, never JSON. */
export const plainForm = (request: { headers: { 'content-type'?: string | undefined } }): boolean =>
  (request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
