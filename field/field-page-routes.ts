import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ScopedServices } from '../api/scoped-services.ts';
import { can } from '../auth/permissions.ts';
import { localStamp } from '../dashboards/csv-fns.ts';
import { formatterFor, type Formatter } from '../dashboards/format-fns.ts';
import { layout, messagePage } from '../dashboards/html.ts';
import { errorPage } from '../dashboards/error-page.ts';
import type { DbExecutor } from '../db/scoped.ts';
import { duePage, feedGasSection, feedingPage, pointPage } from './field-pages.ts';
import type { FieldService } from './field-service.ts';
import { auditActor } from '../api/audit-context.ts';
import { COLLECTION_KG_MAX, FEED_KG_MAX, NOTE_MAX, instantOfLocal } from './field-fns.ts';
import { h } from '../dashboards/html.ts';

/** The browser script of the field pages (dashboards/public/field.js, served under /assets/). */
export const FIELD_SCRIPT = '/assets/field.js';
const FEED_GAS_DAYS = 14;

function html(reply: FastifyReply, body: string, status = 200): FastifyReply {
  return reply
    .status(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(body);
}

/**
 * The section the digester page shows under its gas table: kilograms fed beside gas produced
 * per day (dashboards/page-routes.ts calls it inside its own scoped transaction).
 */
export function digesterFeedSection(make: (tx: DbExecutor) => FieldService) {
  return async (tx: DbExecutor, unitId: string, f: Formatter): Promise<string> =>
    feedGasSection(unitId, await make(tx).feedGas(unitId, FEED_GAS_DAYS), f, { logLink: true });
}

/** The field pages: a digester's feeding log, the needs-collection list, a point's collections. */
export function fieldPages(deps: {
  field: ScopedServices<FieldService>;
  timeZone: string;
  now?: () => Date;
}): FastifyPluginAsync {
  const now = deps.now ?? (() => new Date());
  /** The reader's language (their choice, else Accept-Language), as every dashboard page. */
  const fmt = formatterFor(deps.timeZone);
  const hide = { hide: true };
  const clientText = (f: Formatter) => ({
    saved: f.t('field.js.saved'),
    failed: f.t('field.js.failed'),
    sending: f.t('field.js.sending'),
  });

  return (root) => {
    const app = root.withTypeProvider<ZodTypeProvider>();
    app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
      const status = err.statusCode ?? 500;
      // A cross-site post never came from our page: the API's coded JSON answers it.
      if (err.code === 'CROSS_SITE_REQUEST') throw err;
      if (status === 401) return reply.redirect('/login', 303);
      if (status === 404 || err.code === 'UNIT_NOT_FOUND') {
        const f = fmt(request);
        const text = request.url.startsWith('/digesters')
          ? f.t('field.notFound.digester')
          : f.t('field.notFound.point');
        return html(reply, messagePage(f.t('field.notFound'), text, f), 404);
      }
      if (status === 403 || status === 400) {
        const f = fmt(request);
        return html(
          reply,
          status === 403
            ? messagePage(f.t('field.forbidden'), f.t('field.forbidden.text'), f)
            : errorPage(err, f, { status, title: f.t('field.badRequest') }),
          status,
        );
      }
      // Anything else goes to the API's handler (logged, generic 500).
      throw err;
    });

    app.get(
      '/digesters/:id/feedings',
      {
        schema: { ...hide, params: z.object({ id: z.uuid() }) },
        preHandler: app.requirePermission('dashboard:digesters'),
      },
      async (request, reply) => {
        const f = fmt(request);
        const p = request.principal!;
        const page = await deps.field(request, async (svc) => ({
          unit: await svc.unit(request.params.id, 'biodigester'),
          feedings: await svc.feedings(request.params.id, 30),
          feedGas: await svc.feedGas(request.params.id, FEED_GAS_DAYS),
        }));
        return html(
          reply,
          layout({
            title: f.t('field.title.feedings', { name: page.unit.name }),
            principal: p,
            format: f,
            active: '/digesters',
            body:
              savedLine(request.query, f) +
              feedingPage(page.unit, page.feedings, page.feedGas, f, {
                actorId: p.id,
                canRecord: can(p.role, 'feedings:write'),
                now: now(),
              }),
            data: { page: 'feedings', rules: [], field: clientText(f) },
            scripts: [FIELD_SCRIPT],
          }),
        );
      },
    );

    app.get(
      '/collection/due',
      { schema: hide, preHandler: app.requirePermission('dashboard:collection') },
      async (request, reply) => {
        const f = fmt(request);
        const p = request.principal!;
        const { needsAt, points } = await deps.field(request, (svc) => svc.needsCollection());
        return html(
          reply,
          layout({
            title: f.t('field.title.due'),
            principal: p,
            format: f,
            active: '/collection/due',
            body: duePage(points, needsAt, f, {
              canCollect: can(p.role, 'collections:write'),
              now: now(),
            }),
            data: { page: 'due', rules: [], field: clientText(f) },
            scripts: [FIELD_SCRIPT],
          }),
        );
      },
    );

    app.get(
      '/collection/points/:id',
      {
        schema: { ...hide, params: z.object({ id: z.uuid() }) },
        preHandler: app.requirePermission('dashboard:collection'),
      },
      async (request, reply) => {
        const f = fmt(request);
        const p = request.principal!;
        const at = now();
        const { unit, collections } = await deps.field(request, (svc) =>
          svc.collections(request.params.id, { limit: 200 }),
        );
        return html(
          reply,
          layout({
            title: f.t('field.title.point', { name: unit.name }),
            principal: p,
            format: f,
            active: '/collection/due',
            body:
              savedLine(request.query, f) +
              pointPage(unit, collections, f, {
                canCollect: can(p.role, 'collections:write'),
                now: at,
                today: localStamp(at, deps.timeZone).slice(0, 10),
                yearAgo: localStamp(new Date(at.getTime() - 365 * 86_400_000), deps.timeZone).slice(
                  0,
                  10,
                ),
              }),
            data: { page: 'point', rules: [], field: clientText(f) },
            scripts: [FIELD_SCRIPT],
          }),
        );
      },
    );

    // The same forms posted without their script (a slow phone, scripts off): the body is the
    // form's own fields (the CSRF token in its hidden field, checked by auth/authenticator.ts),
    // the time is read on the configured zone's clock, and the answer is a redirect to the page
    // with a translated "saved" line (post/redirect/get: a reload never posts twice).
    const number = (max: number) => z.coerce.number().gt(0).max(max);
    const text = z.string().max(NOTE_MAX).optional();
    const when = (at: string | undefined) => instantOfLocal(at, deps.timeZone);
    app.post(
      '/digesters/:id/feedings',
      {
        schema: {
          ...hide,
          params: z.object({ id: z.uuid() }),
          body: z.object({ kg: number(FEED_KG_MAX), at: z.string().optional(), note: text }),
        },
        preHandler: app.requirePermission('feedings:write'),
      },
      async (request, reply) => {
        const b = request.body;
        await deps.field(request, (svc) =>
          svc.recordFeeding(
            { unitId: request.params.id, kg: b.kg, fedAt: when(b.at), note: b.note },
            auditActor(request),
          ),
        );
        return reply.redirect(`/digesters/${request.params.id}/feedings?done=1`, 303);
      },
    );
    app.post(
      '/digesters/:id/feedings/:feeding',
      {
        schema: {
          ...hide,
          params: z.object({ id: z.uuid(), feeding: z.coerce.number().int().positive() }),
          body: z.object({ kg: number(FEED_KG_MAX), at: z.string().optional(), note: text }),
        },
        preHandler: app.requirePermission('feedings:write'),
      },
      async (request, reply) => {
        const b = request.body;
        await deps.field(request, (svc) =>
          svc.correctFeeding(
            request.params.feeding,
            { kg: b.kg, fedAt: when(b.at), note: b.note ?? null },
            auditActor(request),
          ),
        );
        return reply.redirect(`/digesters/${request.params.id}/feedings?done=1`, 303);
      },
    );
    app.post(
      '/collection/points/:id',
      {
        schema: {
          ...hide,
          params: z.object({ id: z.uuid() }),
          body: z.object({
            weightKg: number(COLLECTION_KG_MAX),
            at: z.string().optional(),
            note: text,
          }),
        },
        preHandler: app.requirePermission('collections:write'),
      },
      async (request, reply) => {
        const b = request.body;
        await deps.field(request, (svc) =>
          svc.recordCollection(
            {
              unitId: request.params.id,
              weightKg: b.weightKg,
              collectedAt: when(b.at),
              note: b.note,
            },
            auditActor(request),
          ),
        );
        return reply.redirect(`/collection/points/${request.params.id}?done=1`, 303);
      },
    );

    return Promise.resolve();
  };
}

/** The "saved" line after a form posted without its script redirected here (`?done=1`). */
function savedLine(query: unknown, f: Formatter): string {
  return (query as { done?: string } | undefined)?.done === '1'
    ? `<p class="notice status" role="status">${h(f.t('field.js.saved'))}</p>`
    : '';
}
