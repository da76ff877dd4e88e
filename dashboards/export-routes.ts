import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { scopedServices } from '../api/scoped-services.ts';
import type { Db } from '../db/client.ts';
import type { DbExecutor } from '../db/scoped.ts';
import { metricNames } from '../devices/metrics.ts';
import { csvRow, fileSlug, localStamp, zonedDayStart } from './csv-fns.ts';
import type { DashboardQueries } from './dashboard-repo.ts';
import { DashboardErrors } from './dashboard-errors.ts';
import { DEFAULT_TIME_ZONE } from './format-fns.ts';

/**
 * Downloads of a unit's data for a chosen range of local days (issue 19): its stored readings,
 * and the daily gas, as CSV (or JSON). Days are calendar days in the configured zone; `to` is
 * included. Row-level security decides which units exist for the caller.
 */

export const MAX_EXPORT_DAYS = 31;
export const MAX_EXPORT_ROWS = 200_000;
const DAY_MS = 86_400_000;

const isoDay = z.iso.date({ error: 'must be a date like 2026-11-30' });
export const exportQuery = z.object({
  from: isoDay,
  to: isoDay,
  format: z.enum(['csv', 'json']).default('csv'),
});

/** The instants [from, to) of an inclusive range of local days, checked. */
export function dayRange(
  q: { from: string; to: string },
  timeZone: string,
  maxDays: number,
): { from: Date; to: Date; days: number } {
  const days = Math.round((Date.parse(q.to) - Date.parse(q.from)) / DAY_MS) + 1;
  if (days < 1) throw new DashboardErrors.ExportRangeInvalid(q.to, q.from);
  if (days > maxDays) throw new DashboardErrors.ExportRangeTooLong(maxDays, days);
  const next = new Date(Date.parse(q.to) + DAY_MS).toISOString().slice(0, 10);
  return { from: zonedDayStart(q.from, timeZone), to: zonedDayStart(next, timeZone), days };
}

function attachment(reply: FastifyReply, name: string): FastifyReply {
  return reply
    .type('text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${name}.csv"`)
    .header('cache-control', 'no-store');
}

export function exportRoutes(deps: {
  db: Db;
  queries: Pick<DashboardQueries, 'units' | 'readings' | 'dailyGas'>;
  timeZone?: string;
}): FastifyPluginAsync {
  const timeZone = deps.timeZone ?? DEFAULT_TIME_ZONE;
  // The one way to run in the caller's scope (api/scoped-services.ts): the transaction is the service.
  const scoped = scopedServices(deps.db, (tx): DbExecutor => tx);
  const unitOf = async (tx: DbExecutor, id: string) => {
    const [unit] = await deps.queries.units(tx, { unitId: id });
    if (!unit) throw new DashboardErrors.UnitNotFound(id);
    return unit;
  };

  return (root) => {
    const app = root.withTypeProvider<ZodTypeProvider>();
    const tags = ['dashboards'];
    const params = z.object({ id: z.uuid({ error: 'must be a unit id (UUID)' }) });

    app.get(
      '/units/:id/readings',
      {
        preHandler: app.requirePermission('readings:read'),
        schema: {
          tags,
          summary: `A unit's stored readings for a range of local days (at most ${MAX_EXPORT_DAYS}), as CSV (default) or JSON`,
          params,
          querystring: exportQuery,
        },
      },
      async (request, reply) => {
        const range = dayRange(request.query, timeZone, MAX_EXPORT_DAYS);
        const { unit, result } = await scoped(request, async (tx) => {
          const u = await unitOf(tx, request.params.id);
          return {
            unit: u,
            result: await deps.queries.readings(tx, u.id, range.from, range.to, MAX_EXPORT_ROWS),
          };
        });
        if (result.truncated) throw new DashboardErrors.ExportTooManyRows(MAX_EXPORT_ROWS);
        const columns = metricNames.filter((m) => result.rows.some((r) => r[m] != null));
        if (request.query.format === 'json')
          return {
            unitId: unit.id,
            from: range.from,
            to: range.to,
            timeZone,
            readings: result.rows.map((r) => ({
              ts: new Date(r.ts).toISOString(),
              deviceId: r.deviceId,
              seq: Number(r.seq),
              ...Object.fromEntries(columns.map((m) => [m, r[m]])),
            })),
          };
        let body = csvRow(['ts_utc', `local_time (${timeZone})`, 'device_id', 'seq', ...columns]);
        for (const r of result.rows)
          body += csvRow([
            new Date(r.ts).toISOString(),
            localStamp(new Date(r.ts), timeZone),
            r.deviceId,
            r.seq,
            ...columns.map((m) => r[m]),
          ]);
        return attachment(
          reply,
          `${fileSlug(unit.name)}-readings-${request.query.from}-to-${request.query.to}`,
        ).send(body);
      },
    );

    app.get(
      '/units/:id/gas',
      {
        preHandler: app.requirePermission('readings:read'),
        schema: {
          tags,
          summary:
            'Biogas produced per local day (m³) for a range of days (at most 366), as CSV (default) or JSON',
          params,
          querystring: exportQuery,
        },
      },
      async (request, reply) => {
        const range = dayRange(request.query, timeZone, 366);
        const { unit, days } = await scoped(request, async (tx) => {
          const u = await unitOf(tx, request.params.id);
          // dailyGas counts `days` local days back from the day holding `now`.
          return {
            unit: u,
            days: await deps.queries.dailyGas(
              tx,
              u.id,
              range.days,
              new Date(range.to.getTime() - 1),
            ),
          };
        });
        if (request.query.format === 'json') return { unitId: unit.id, timeZone, days };
        let body = csvRow(['day', 'biogas_m3']);
        for (const d of days) body += csvRow([d.day, d.m3]);
        return attachment(
          reply,
          `${fileSlug(unit.name)}-daily-gas-${request.query.from}-to-${request.query.to}`,
        ).send(body);
      },
    );

    return Promise.resolve();
  };
}
