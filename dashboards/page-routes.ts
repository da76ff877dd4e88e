import { createRequire } from 'node:module';
import { deviceConfigPanel, deviceConfigSection } from '../device-config/config-pages.ts';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { scopedServices } from '../api/scoped-services.ts';
import { can } from '../auth/permissions.ts';
import type { Db } from '../db/client.ts';
import { inTurn, type DbExecutor } from '../db/scoped.ts';
import type { DashboardQueries } from './dashboard-repo.ts';
import { errorPage } from './error-page.ts';
import { h, layout, messagePage, navFor } from './html.ts';
import type { MessageKey, Vars } from '../i18n/index.ts';
import { firmwareForms, firmwareOverview, rolloutDetail } from './firmware-pages.ts';
import { alertList, alertTitle, guidanceMap } from './alert-pages.ts';
import { rulesResolver } from './alert-override-fns.ts';
import { unitRulesLink } from './alert-override-pages.ts';
import { DEFAULT_TIME_ZONE, formatterFor, type Formatter } from './format-fns.ts';
import { techAssets } from './technician-kit.ts';
import { devicePanel } from './technician-pages.ts';
import { doneText } from './technician-routes.ts';
import {
  collectionList,
  deviceDetail,
  digesterDetail,
  digesterList,
  digesterMetrics,
  fleetTable,
  staleAfterMs,
} from './pages.ts';

/**
 * The dashboards' pages (server-rendered, behind sign-in) and their static assets. A page asked
 * for without a session redirects to /login; a role that may not open it gets a 403 page.
 */

const publicDir = fileURLToPath(new URL('./public/', import.meta.url));
const uplotDir = path.dirname(
  createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'),
);

function html(reply: FastifyReply, body: string, status = 200): FastifyReply {
  return reply
    .status(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(body);
}

export function dashboardPages(deps: {
  db: Db;
  queries: DashboardQueries;
  /** IANA zone every page and chart shows times in (config DASHBOARD_TIME_ZONE). */ timeZone?: string;
  /** More of the digester page, rendered in its scoped transaction (field/: food fed beside gas), and their scripts. */
  digesterSections?: {
    render: (tx: DbExecutor, unitId: string, f: Formatter) => Promise<string>;
    scripts: readonly string[];
  }[];
  /**
   * The collection points' ids in the one collection order (field/: needsCollectionOrder with
   * each point's fill-rate forecast); without it the page orders by the same function on fill
   * levels alone.
   */
  collectionOrder?: (tx: DbExecutor) => Promise<readonly string[]>;
}): FastifyPluginAsync {
  /** The reader's language (their choice, else Accept-Language), always the configured zone. */
  const fmt = formatterFor(deps.timeZone ?? DEFAULT_TIME_ZONE);
  const scoped = scopedServices(deps.db, (tx): DbExecutor => tx);
  const hide = { hide: true };

  /** What the client script needs to render an alert added live as the server would. */
  const alertData = (
    request: FastifyRequest,
    rules: readonly { id: string; metric: string | null; title: string }[],
  ) => ({
    titles: Object.fromEntries(
      rules.map((r) => [r.id, alertTitle({ ruleId: r.id, title: r.title }, fmt(request).t)]),
    ),
    canAck: can(request.principal!.role, 'alerts:ack'),
    canFleet: can(request.principal!.role, 'dashboard:fleet'),
    guidance: guidanceMap(
      rules.map((r) => r.id),
      fmt(request).t,
    ),
    ruleMetric: Object.fromEntries(rules.map((r) => [r.id, r.metric])),
  });

  const notFound = (request: FastifyRequest, text: MessageKey, vars?: Vars) => {
    const f = fmt(request);
    return messagePage(f.t('error.notFound'), f.t(text, vars), f);
  };

  return async (root) => {
    // Assets change only with a release: cached a day, revalidated by ETag after that.
    await root.register(fastifyStatic, {
      root: publicDir,
      prefix: '/assets/',
      maxAge: '1d',
      index: false,
      wildcard: false,
    });
    await root.register(fastifyStatic, {
      root: uplotDir,
      prefix: '/assets/vendor/',
      maxAge: '7d',
      immutable: false,
      index: false,
      wildcard: false,
      decorateReply: false,
      allowedPath: (p) => /^\/uPlot\.(iife\.min\.js|min\.css)$/.test(p),
    });

    const app = root.withTypeProvider<ZodTypeProvider>();
    app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
      const status = err.statusCode ?? 500;
      if (status === 401) return reply.redirect(`/login`, 303);
      const f = fmt(request);
      const page = (title: MessageKey, text: MessageKey) =>
        html(reply, messagePage(f.t(title), f.t(text), f), status);
      if (status === 403) return page('error.forbiddenTitle', 'error.forbidden');
      if (status === 404) return page('error.notFound', 'error.notFoundText');
      if (status === 400 && (err as { validation?: unknown }).validation !== undefined)
        return page('error.badRequest', 'error.badRequestText');
      // A service's refusal (409, a coded 400): its own sentence in the reader's language.
      if (status < 500) return html(reply, errorPage(err, f, { status }), status);
      // Anything else goes to the API's handler (logged, generic 500).
      throw err;
    });

    app.get(
      '/',
      { schema: hide, preHandler: app.requirePermission('account:self') },
      (request, reply) => {
        const first = navFor(request.principal!)[0];
        if (first) return reply.redirect(first.href, 303);
        return html(
          reply,
          layout({
            title: fmt(request).t('title.welcome'),
            principal: request.principal!,
            format: fmt(request),
            active: '/',
            body: `<p>${h(fmt(request).t('welcome.noDashboard'))} <a href="/docs">/docs</a></p>`,
          }),
        );
      },
    );

    app.get(
      '/digesters',
      { schema: hide, preHandler: app.requirePermission('dashboard:digesters') },
      async (request, reply) => {
        const { units, rules, overrides } = await scoped(request, async (tx) => ({
          units: await deps.queries.units(tx, { kind: 'biodigester' }),
          rules: await deps.queries.rules(tx),
          overrides: await deps.queries.overrides(tx),
        }));
        const kindRules = rules.filter((r) => r.unitKind === 'biodigester');
        // Each card by its unit's effective rules (a unit's own thresholds where it has them).
        const rulesOf = rulesResolver(rules, overrides);
        return html(
          reply,
          layout({
            title: fmt(request).t('title.digesters'),
            principal: request.principal!,
            format: fmt(request),
            active: '/digesters',
            body: digesterList(units, rulesOf, fmt(request)),
            data: {
              page: 'digesters',
              rules: kindRules,
              unitRules: rulesOf.overridden(units),
              staleMs: staleAfterMs(kindRules, 'biodigester'),
            },
          }),
        );
      },
    );

    app.get(
      '/digesters/:id',
      {
        schema: { ...hide, params: z.object({ id: z.uuid({ error: 'not a digester id' }) }) },
        preHandler: app.requirePermission('dashboard:digesters'),
      },
      async (request, reply) => {
        const page = await scoped(request, async (tx) => {
          const [unit] = await deps.queries.units(tx, {
            kind: 'biodigester',
            unitId: request.params.id,
          });
          if (!unit) return undefined;
          return {
            unit,
            rules: rulesResolver(
              await deps.queries.rules(tx),
              await deps.queries.overrides(tx, [unit.id]),
            )(unit.id, unit.kind),
            gas: await deps.queries.dailyGas(tx, unit.id, 7),
            // One after another: they share the transaction's connection.
            sections: await inTurn(
              ...(deps.digesterSections ?? []).map(
                (s) => () => s.render(tx, unit.id, fmt(request)),
              ),
            ),
          };
        });
        if (!page) return html(reply, notFound(request, 'error.noDigester'), 404);
        return html(
          reply,
          layout({
            title: page.unit.name,
            principal: request.principal!,
            format: fmt(request),
            active: '/digesters',
            body:
              digesterDetail(page.unit, page.rules, page.gas, request.principal!, fmt(request)) +
              (can(request.principal!.role, 'alerts:configure')
                ? unitRulesLink(page.unit.id, fmt(request))
                : '') +
              page.sections.join(''),
            scripts: (deps.digesterSections ?? []).flatMap((s) => s.scripts),
            data: {
              page: 'digester',
              unitId: page.unit.id,
              metrics: digesterMetrics,
              rules: page.rules,
              staleMs: staleAfterMs(page.rules, 'biodigester'),
              ...alertData(request, page.rules),
            },
          }),
        );
      },
    );

    app.get(
      '/collection',
      { schema: hide, preHandler: app.requirePermission('dashboard:collection') },
      async (request, reply) => {
        const { units, rules, overrides, order } = await scoped(request, async (tx) => ({
          units: await deps.queries.units(tx, { kind: 'collection_point' }),
          rules: await deps.queries.rules(tx),
          overrides: await deps.queries.overrides(tx),
          order: deps.collectionOrder ? await deps.collectionOrder(tx) : undefined,
        }));
        const rulesOf = rulesResolver(rules, overrides);
        const needsAt =
          rules.find((r) => r.id === 'collection_point.fill_level_pct.high')?.warn ?? 80;
        const kindRules = rules.filter((r) => r.unitKind === 'collection_point');
        return html(
          reply,
          layout({
            title: fmt(request).t('title.collection'),
            principal: request.principal!,
            format: fmt(request),
            active: '/collection',
            body: collectionList(units, needsAt, rulesOf, fmt(request), Date.now(), order),
            data: {
              page: 'collection',
              rules: kindRules,
              unitRules: rulesOf.overridden(units),
              staleMs: staleAfterMs(kindRules, 'collection_point'),
            },
          }),
        );
      },
    );

    const fleetQuery = z.object({
      kind: z.enum(['biodigester', 'collection_point', '']).optional(),
      site: z.string().max(200).optional(),
      state: z.enum(['online', 'offline', 'attention', '']).optional(),
      q: z.string().max(64).optional(),
    });
    app.get(
      '/fleet',
      {
        schema: { ...hide, querystring: fleetQuery },
        preHandler: app.requirePermission('dashboard:fleet'),
      },
      async (request, reply) => {
        // An empty select option means "all".
        const f = Object.fromEntries(Object.entries(request.query).filter(([, v]) => v)) as {
          kind?: 'biodigester' | 'collection_point';
          site?: string;
          state?: 'online' | 'offline' | 'attention';
          q?: string;
        };
        const { rows, rules, sites, overrides } = await scoped(request, async (tx) => ({
          rows: await deps.queries.fleet(tx, f),
          rules: await deps.queries.rules(tx),
          sites: await deps.queries.sites(tx),
          overrides: await deps.queries.overrides(tx),
        }));
        const rulesOf = rulesResolver(rules, overrides);
        const fleetUnits = [
          ...new Map(rows.map((r) => [r.unitId, { id: r.unitId, kind: r.kind }])).values(),
        ];
        return html(
          reply,
          layout({
            title: fmt(request).t('title.fleet'),
            principal: request.principal!,
            format: fmt(request),
            active: '/fleet',
            body: fleetTable(rows, rulesOf, f, sites, fmt(request)),
            data: {
              page: 'fleet',
              rules: rules.filter((r) => r.metric === 'battery_v'),
              unitRules: rulesOf.overridden(fleetUnits),
            },
          }),
        );
      },
    );

    app.get(
      '/fleet/:id',
      {
        schema: { ...hide, params: z.object({ id: z.string().max(64) }) },
        preHandler: app.requirePermission('dashboard:fleet'),
      },
      async (request, reply) => {
        const page = await scoped(request, async (tx) => {
          const device = await deps.queries.device(tx, request.params.id);
          if (!device) return undefined;
          return {
            device,
            alerts: await deps.queries.alerts(tx, { deviceId: device.id, limit: 20 }),
            // The device's unit's effective rules (its own thresholds where it has them).
            rules: rulesResolver(
              await deps.queries.rules(tx),
              await deps.queries.overrides(tx, [device.unitId]),
            )(device.unitId, device.kind),
            config: await deviceConfigPanel(tx, device.id),
          };
        });
        if (!page)
          return html(reply, notFound(request, 'error.noDevice', { id: request.params.id }), 404);
        return html(
          reply,
          layout({
            title: page.device.id,
            principal: request.principal!,
            format: fmt(request),
            active: '/fleet',
            body:
              deviceDetail(page.device, page.alerts, request.principal!, page.rules, fmt(request)) +
              (can(request.principal!.role, 'alerts:configure')
                ? unitRulesLink(page.device.unitId, fmt(request))
                : '') +
              deviceConfigSection(page.config, fmt(request)) +
              // The technician's actions and battery/signal chart (dashboards/technician-pages.ts).
              devicePanel(
                page.device,
                request.principal!,
                fmt(request),
                doneText(fmt(request).t, (request.query as { done?: unknown }).done),
              ),
            data: {
              page: 'device',
              deviceId: page.device.id,
              rules: page.rules,
              metrics: ['battery_v', 'rssi_dbm'],
              tech: { failed: fmt(request).t('tech.js.failed') },
              ...alertData(request, page.rules),
            },
            extra: techAssets,
          }),
        );
      },
    );

    app.get(
      '/firmware',
      { schema: hide, preHandler: app.requirePermission('firmware:read') },
      async (request, reply) => {
        const role = request.principal!.role;
        const write = can(role, 'firmware:write');
        const { releases, rollouts, units } = await scoped(request, async (tx) => ({
          releases: await deps.queries.firmwareReleases(tx),
          rollouts: await deps.queries.firmwareRollouts(tx),
          units: write ? await deps.queries.units(tx, {}) : [],
        }));
        const forms = write
          ? firmwareForms(
              releases,
              rollouts,
              units,
              { write, approve: can(role, 'firmware:approve') },
              fmt(request),
            )
          : '';
        return html(
          reply,
          layout({
            title: fmt(request).t('title.firmware'),
            principal: request.principal!,
            format: fmt(request),
            active: '/firmware',
            body: forms + firmwareOverview(releases, rollouts, fmt(request)),
            data: {
              page: 'firmware',
              rules: [],
              tech: { failed: fmt(request).t('tech.js.failed') },
            },
            extra: techAssets,
          }),
        );
      },
    );

    app.get(
      '/firmware/rollouts/:id',
      {
        schema: { ...hide, params: z.object({ id: z.uuid({ error: 'not a rollout id' }) }) },
        preHandler: app.requirePermission('firmware:read'),
      },
      async (request, reply) => {
        const rollout = await scoped(request, (tx) =>
          deps.queries.firmwareRollout(tx, request.params.id),
        );
        if (!rollout)
          return html(reply, notFound(request, 'error.noRollout', { id: request.params.id }), 404);
        return html(
          reply,
          layout({
            title: fmt(request).t('title.rollout', { version: rollout.version }),
            principal: request.principal!,
            format: fmt(request),
            active: '/firmware',
            body: rolloutDetail(rollout, fmt(request)),
            data: { page: 'rollout', rules: [] },
          }),
        );
      },
    );

    app.get(
      '/alerts',
      { schema: hide, preHandler: app.requirePermission('alerts:read') },
      async (request, reply) => {
        const { alerts, rules } = await scoped(request, async (tx) => ({
          alerts: await deps.queries.alerts(tx, { limit: 200 }),
          rules: await deps.queries.rules(tx),
        }));
        const open = alerts.filter((a) => a.status === 'open');
        const closed = alerts.filter((a) => a.status === 'closed').slice(0, 50);
        const f = fmt(request);
        const done = (request.query as { done?: string }).done === 'ack';
        const body = `${done ? `<p class="notice status" role="status">${h(f.t('forms.ackDone'))}</p>` : ''}<section><h2>${h(f.t('alerts.open'))}</h2><div id="alerts">${alertList(open, request.principal!, f, { showUnit: true })}</div></section><section><h2>${h(f.t('alerts.recentlyClosed'))}</h2><div id="closed">${alertList(closed, request.principal!, f, { showUnit: true })}</div></section>`;
        return html(
          reply,
          layout({
            title: f.t('title.alerts'),
            principal: request.principal!,
            format: f,
            active: '/alerts',
            body,
            data: { page: 'alerts', rules: [], ...alertData(request, rules) },
          }),
        );
      },
    );
  };
}
