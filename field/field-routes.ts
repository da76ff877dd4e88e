import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import type { ScopedServices } from '../api/scoped-services.ts';
import { csvRow, fileSlug, localStamp } from '../dashboards/csv-fns.ts';
import { dayRange, exportQuery } from '../dashboards/export-routes.ts';
import { COLLECTION_KG_MAX, FEED_KG_MAX, NOTE_MAX } from './field-fns.ts';
import type { FieldService } from './field-service.ts';

/**
 * The field records as JSON (and the collection history as CSV), under /api/v1 like every API
 * route: the pages' script posts to these with the session's CSRF token; integrators use tokens.
 * Bounds are checked here (zod) and again by the database (migration field_log's CHECKs).
 */

const unitParams = z.object({ id: z.uuid({ error: 'must be a unit id (UUID)' }) });
const note = z.string().max(NOTE_MAX, `at most ${NOTE_MAX} characters`).nullish();
const instant = z.iso
  .datetime({
    offset: true,
    error: 'must be an ISO 8601 time with its offset, e.g. 2026-11-30T12:30:00+03:00',
  })
  .transform((s) => new Date(s));
const feedKg = z
  .number({ error: 'kg must be a number' })
  .positive('kg must be more than 0')
  .max(FEED_KG_MAX, `kg must be at most ${FEED_KG_MAX} per entry (split a bigger load)`);
const collectionKg = z
  .number({ error: 'weightKg must be a number' })
  .positive('weightKg must be more than 0')
  .max(COLLECTION_KG_MAX, `weightKg must be at most ${COLLECTION_KG_MAX}`);

export const feedingOut = z.object({
  id: z.number(),
  unitId: z.string(),
  fedAt: z.date(),
  kg: z.number(),
  note: z.string().nullable(),
  recordedBy: z.string(),
  recordedByName: z.string(),
  recordedAt: z.date(),
  correctedAt: z.date().nullable(),
  voidedAt: z.date().nullable(),
});

export function fieldRoutes(deps: {
  field: ScopedServices<FieldService>;
  timeZone: string;
}): FastifyPluginAsync {
  return (root) => {
    const app = root.withTypeProvider<ZodTypeProvider>();
    const tags = ['field'];
    const run = deps.field;

    app.get(
      '/units/:id/feedings',
      {
        preHandler: app.requirePermission('readings:read'),
        schema: {
          tags,
          summary:
            "A digester's feedings of the last `days` days, newest first (deleted ones marked)",
          params: unitParams,
          querystring: z.object({ days: z.coerce.number().int().min(1).max(366).default(30) }),
          response: { 200: z.object({ feedings: z.array(feedingOut) }) },
        },
      },
      async (request) => ({
        feedings: await run(request, (f) => f.feedings(request.params.id, request.query.days)),
      }),
    );

    app.post(
      '/units/:id/feedings',
      {
        preHandler: app.requirePermission('feedings:write'),
        schema: {
          tags,
          summary: `Record food waste fed to a digester: kg (0 < kg ≤ ${FEED_KG_MAX}), time (default now; not in the future, not before the unit existed), note (audited)`,
          params: unitParams,
          body: z.object({ kg: feedKg, fedAt: instant.optional(), note }),
          response: { 201: feedingOut },
        },
      },
      async (request, reply) =>
        reply
          .status(201)
          .send(
            await run(request, (f) =>
              f.recordFeeding({ unitId: request.params.id, ...request.body }, auditActor(request)),
            ),
          ),
    );

    const feedingParams = z.object({ id: z.coerce.number().int().positive() });
    app.patch(
      '/feedings/:id',
      {
        preHandler: app.requirePermission('feedings:write'),
        schema: {
          tags,
          summary:
            'Correct your own feeding (within 7 days of recording); the old values stay in the audit log',
          params: feedingParams,
          body: z
            .object({ kg: feedKg.optional(), fedAt: instant.optional(), note })
            .refine((b) => b.kg !== undefined || b.fedAt !== undefined || b.note !== undefined, {
              message: 'give kg, fedAt or note to change',
            }),
          response: { 200: feedingOut },
        },
      },
      (request) =>
        run(request, (f) => f.correctFeeding(request.params.id, request.body, auditActor(request))),
    );

    app.delete(
      '/feedings/:id',
      {
        preHandler: app.requirePermission('feedings:write'),
        schema: {
          tags,
          summary:
            'Delete your own feeding (within 7 days): it is marked deleted, and the audit log keeps what it said',
          params: feedingParams,
          response: { 200: feedingOut },
        },
      },
      (request) => run(request, (f) => f.deleteFeeding(request.params.id, auditActor(request))),
    );

    app.get(
      '/units/:id/feed-gas',
      {
        preHandler: app.requirePermission('readings:read'),
        schema: {
          tags,
          summary: 'Kilograms fed and biogas produced (m³) per local day, the last `days` days',
          params: unitParams,
          querystring: z.object({ days: z.coerce.number().int().min(1).max(90).default(14) }),
        },
      },
      async (request) => ({
        unitId: request.params.id,
        timeZone: deps.timeZone,
        days: await run(request, (f) => f.feedGas(request.params.id, request.query.days)),
      }),
    );

    app.post(
      '/units/:id/collections',
      {
        preHandler: app.requirePermission('collections:write'),
        schema: {
          tags,
          summary: `Mark a collection point collected by the signed-in user: weightKg (0 < w ≤ ${COLLECTION_KG_MAX}), time (default now), note (audited)`,
          params: unitParams,
          body: z.object({ weightKg: collectionKg, collectedAt: instant.optional(), note }),
        },
      },
      async (request, reply) =>
        reply
          .status(201)
          .send(
            await run(request, (f) =>
              f.recordCollection(
                { unitId: request.params.id, ...request.body },
                auditActor(request),
              ),
            ),
          ),
    );

    app.get(
      '/units/:id/collections',
      {
        preHandler: app.requirePermission('readings:read'),
        schema: {
          tags,
          summary:
            "A collection point's collections for a range of local days (at most 366), as CSV (default) or JSON",
          params: unitParams,
          querystring: exportQuery,
        },
      },
      async (request, reply) => {
        const range = dayRange(request.query, deps.timeZone, 366);
        const { unit, collections } = await run(request, (f) =>
          f.collections(request.params.id, { from: range.from, to: range.to }),
        );
        if (request.query.format === 'json')
          return { unitId: unit.id, timeZone: deps.timeZone, collections };
        let body = csvRow([
          'collected_at_utc',
          `local_time (${deps.timeZone})`,
          'weight_kg',
          'collected_by',
          'note',
          'recorded_at_utc',
        ]);
        for (const c of [...collections].reverse())
          body += csvRow([
            c.collectedAt.toISOString(),
            localStamp(c.collectedAt, deps.timeZone),
            c.weightKg,
            c.collectedByName,
            c.note,
            c.recordedAt.toISOString(),
          ]);
        return reply
          .type('text/csv; charset=utf-8')
          .header(
            'content-disposition',
            `attachment; filename="${fileSlug(unit.name)}-collections-${request.query.from}-to-${request.query.to}.csv"`,
          )
          .header('cache-control', 'no-store')
          .send(body);
      },
    );

    app.get(
      '/collection/due',
      {
        preHandler: app.requirePermission('dashboard:collection'),
        schema: {
          tags,
          summary:
            'Collection points in the needs-collection order: due ones (at or over the threshold) fullest first, then by forecast time to full (least-squares fill rate since the last emptying), then the rest',
        },
      },
      async (request) => {
        const points = await run(request, (f) => f.needsCollection());
        return {
          needsAt: points.needsAt,
          points: points.points.map((p) => ({
            unitId: p.unitId,
            name: p.unit.name,
            site: p.unit.site,
            fillPct: p.fill?.pct ?? null,
            fillAt: p.fill?.ts ?? null,
            lastCollectedAt: p.lastCollectedAt,
            collectedSinceReading: p.collectedSinceReading,
            due: p.due,
            forecast:
              p.forecast.kind === 'forecast'
                ? {
                    fullAt: p.forecast.fullAt,
                    slopePctPerHour: Math.round(p.forecast.slopePerHour * 100) / 100,
                    readings: p.forecast.points,
                  }
                : { none: p.forecast.reason, readings: p.forecast.points },
          })),
        };
      },
    );

    return Promise.resolve();
  };
}
