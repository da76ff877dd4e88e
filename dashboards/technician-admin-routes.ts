import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import { scopedServices, type ScopedServices } from '../api/scoped-services.ts';
import type { AuditLog } from '../audit/index.ts';
import { roles } from '../auth/permissions.ts';
import type { UserService } from '../auth/user-service.ts';
import type { Db } from '../db/client.ts';
import { inTurn, type DbExecutor } from '../db/scoped.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { createAlertOperator } from './alert-operator-service.ts';
import type { ThresholdProblem } from './alert-override-fns.ts';
import { alertOverridePageRoutes } from './alert-override-page-routes.ts';
import { problemNotice, unitPicker } from './alert-override-pages.ts';
import type { RulesChangedSink } from './alert-service.ts';
import type { DashboardQueries } from './dashboard-repo.ts';
import type { LiveHub } from './live-hub.ts';
import { linkShown, rulesPage, userPage, usersPage } from './technician-admin-pages.ts';
import { createKit, formList as list, formOn as on, installTechErrors } from './technician-kit.ts';
import { hubPage, type UnitOption } from './technician-pages.ts';

/**
 * People and alert rules in the browser: the same services and audit entries as
 * /api/v1/users and /api/v1/alert-rules. Setup and reset links are shown
 * once, in the answer to the POST that made them.
 */
export interface TechnicianAdminDeps {
  db: Db;
  audit: AuditLog;
  queries: DashboardQueries;
  hub: LiveHub;
  alerts?: RulesChangedSink;
  /** The user service in the caller's scope (the one /api/v1/users uses). */
  users?: ScopedServices<UserService>;
  timeZone?: string;
}

const num = z.string().trim().min(1).pipe(z.coerce.number<string>().finite());

/** The caller's scoped transaction with the registry, and the units as form options. */
export function adminScope(deps: { db: Db; audit: AuditLog }) {
  const scoped = scopedServices(deps.db, (tx) => {
    const record: AuditLog['record'] = (entry) => deps.audit.record(entry, tx);
    const executor: DbExecutor = tx;
    return { tx: executor, devices: createDeviceService({ db: tx, audit: deps.audit }), record };
  });
  const unitOptions = (request: FastifyRequest): Promise<UnitOption[]> =>
    scoped(request, async (s) => {
      const [units, sites] = await inTurn(
        () => s.devices.listUnits(),
        () => s.devices.listSites(),
      );
      const name = new Map(sites.map((x) => [x.id, x.name]));
      return units.map((u) => ({
        id: u.id,
        name: u.name,
        kind: u.kind,
        site: name.get(u.siteId) ?? '',
      }));
    });
  return { scoped, unitOptions };
}

export function technicianAdminRoutes(deps: TechnicianAdminDeps): FastifyPluginAsync {
  const kit = createKit(deps.timeZone);
  const operator = createAlertOperator(deps);
  const { scoped, unitOptions } = adminScope(deps);
  return (root) => {
    const app = root.withTypeProvider<ZodTypeProvider>();
    installTechErrors(app, kit);
    const hide = { hide: true };

    app.get(
      '/manage',
      { schema: hide, preHandler: app.requirePermission('devices:write') },
      (request, reply) => {
        const f = kit.fmt(request);
        return kit.page(request, reply, {
          title: f.t('tech.hub.title'),
          active: '/manage',
          body: hubPage(request.principal!, f),
        });
      },
    );

    // ---- Alert rules ----
    // A unit's own thresholds: the picker below, the unit's page in alert-override-page-routes.ts.
    void app.register(alertOverridePageRoutes({ ...deps, kit }));
    const rulesView = async (
      request: FastifyRequest,
      result?: string,
      refused?: { html: string; status: number },
    ) => {
      const f = kit.fmt(request);
      const [rules, overrides] = await scoped(request, (s) =>
        inTurn(
          () => deps.queries.rules(s.tx),
          () => deps.queries.overrides(s.tx),
        ),
      );
      const units = await unitOptions(request);
      return {
        title: f.t('tech.rules.title'),
        active: '/manage',
        ...(refused ? { status: refused.status } : {}),
        body:
          (refused?.html ?? '') +
          unitPicker(units, new Set(overrides.map((o) => o.unitId)), f) +
          rulesPage(rules, f, result),
      };
    };
    app.get(
      '/manage/rules',
      { schema: hide, preHandler: app.requirePermission('alerts:configure') },
      async (request, reply) => kit.page(request, reply, await rulesView(request)),
    );
    app.post(
      '/manage/rules/:id',
      {
        schema: {
          ...hide,
          params: z.object({ id: z.string().max(100) }),
          body: z.object({
            warn: num,
            critical: z.string().trim().max(40).optional(),
            clear: num,
            enabled: z.string().optional(),
          }),
        },
        preHandler: app.requirePermission('alerts:configure'),
      },
      async (request, reply) => {
        const critical = request.body.critical ? num.parse(request.body.critical) : null;
        const f = kit.fmt(request);
        try {
          await scoped(request, (s) =>
            operator.updateRule(s.tx, {
              id: request.params.id,
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
          // Refused thresholds: the page again, the reason in the reader's language.
          const problem = (err as { problem?: ThresholdProblem }).problem;
          if (!problem) throw err;
          const rules = await scoped(request, (s) => deps.queries.rules(s.tx));
          const title = rules.find((r) => r.id === request.params.id)?.title ?? request.params.id;
          return kit.page(
            request,
            reply,
            await rulesView(request, undefined, {
              html: problemNotice(problem, { id: request.params.id, title }, f),
              status: 400,
            }),
          );
        }
        return kit.page(
          request,
          reply,
          await rulesView(request, f.t('tech.rules.saved', { id: request.params.id })),
        );
      },
    );

    // ---- Users (admin: users:read / users:write) ----
    const users = deps.users;
    if (users) {
      const listView = async (request: FastifyRequest, shown?: string) => {
        const f = kit.fmt(request);
        const all = await users(request, (u) => u.list());
        return {
          title: f.t('tech.users.title'),
          active: '/manage',
          body: usersPage(all, f, shown),
        };
      };
      app.get(
        '/manage/users',
        { schema: hide, preHandler: app.requirePermission('users:read') },
        async (request, reply) => kit.page(request, reply, await listView(request)),
      );
      app.post(
        '/manage/users',
        {
          schema: {
            ...hide,
            body: z.object({
              username: z
                .string()
                .regex(/^[a-z0-9._-]{3,64}$/i, 'letters, digits, . _ - (3 to 64)'),
              displayName: z.string().trim().min(1).max(128),
              email: z.union([z.literal(''), z.email().max(254)]).optional(),
              role: z.enum(roles),
            }),
          },
          preHandler: app.requirePermission('users:write'),
        },
        async (request, reply) => {
          const made = await users(request, (u) =>
            u.create({ ...request.body, email: request.body.email || null }, auditActor(request)),
          );
          const f = kit.fmt(request);
          return kit.page(
            request,
            reply,
            await listView(request, linkShown(f, made.setupLink, made.user.username)),
          );
        },
      );
      const userView = async (request: FastifyRequest, id: string, shown?: string) => {
        const f = kit.fmt(request);
        const [u, assigned] = await users(request, async (svc) => {
          const one = (await svc.list()).find((x) => x.id === id);
          return [one, one ? await svc.unitsOf(id) : []] as const;
        });
        if (!u) return undefined;
        return {
          title: u.username,
          active: '/manage',
          body: userPage(u, assigned, await unitOptions(request), f, shown),
        };
      };
      const idParams = z.object({ id: z.uuid() });
      app.get(
        '/manage/users/:id',
        { schema: { ...hide, params: idParams }, preHandler: app.requirePermission('users:read') },
        async (request, reply) => {
          const view = await userView(request, request.params.id);
          if (!view) return reply.callNotFound();
          return kit.page(request, reply, view);
        },
      );
      app.post(
        '/manage/users/:id',
        {
          schema: {
            ...hide,
            params: idParams,
            body: z.object({ role: z.enum(roles), disabled: z.string().optional() }),
          },
          preHandler: app.requirePermission('users:write'),
        },
        async (request, reply) => {
          await users(request, (u) =>
            u.update(
              request.params.id,
              { role: request.body.role, disabled: on(request.body.disabled) },
              auditActor(request),
            ),
          );
          const f = kit.fmt(request);
          const view = await userView(
            request,
            request.params.id,
            `<p class="notice status" role="status">${f.t('tech.users.saved')}</p>`,
          );
          return kit.page(request, reply, view!);
        },
      );
      app.post(
        '/manage/users/:id/units',
        {
          schema: {
            ...hide,
            params: idParams,
            body: z.object({ unitIds: z.string().max(40_000).optional() }),
          },
          preHandler: app.requirePermission('users:write'),
        },
        async (request, reply) => {
          await users(request, (u) =>
            u.assignUnits(request.params.id, list(request.body.unitIds), auditActor(request)),
          );
          const f = kit.fmt(request);
          const view = await userView(
            request,
            request.params.id,
            `<p class="notice status" role="status">${f.t('tech.users.unitsSaved')}</p>`,
          );
          return kit.page(request, reply, view!);
        },
      );
      app.post(
        '/manage/users/:id/reset-link',
        { schema: { ...hide, params: idParams }, preHandler: app.requirePermission('users:write') },
        async (request, reply) => {
          const link = await users(request, (u) =>
            u.resetLink(request.params.id, auditActor(request)),
          );
          const view = await userView(request, request.params.id);
          const f = kit.fmt(request);
          return kit.page(request, reply, {
            ...view!,
            body: linkShown(f, link, view!.title) + view!.body,
          });
        },
      );
    }

    return Promise.resolve();
  };
}
