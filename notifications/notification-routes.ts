import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import { scopedServices } from '../api/scoped-services.ts';
import type { AuditLog } from '../audit/index.ts';
import type { Db } from '../db/client.ts';
import { NotificationErrors } from './notification-errors.ts';
import { createSettingsService, HHMM } from './settings-service.ts';

/** The settings body: the same shape GET returns, so a client can read, change and put back. */
export const settingsBody = z.object({
  email: z.object({ enabled: z.boolean(), address: z.string().max(254).nullable() }),
  sms: z.object({ enabled: z.boolean(), phone: z.string().max(32).nullable() }),
  quietHours: z
    .object({
      start: z.string().regex(HHMM, 'must be HH:MM (24 h)'),
      end: z.string().regex(HHMM, 'must be HH:MM (24 h)'),
    })
    .nullable(),
  criticalOverridesQuiet: z.boolean(),
  summary: z.enum(['none', 'daily', 'weekly']),
});

/** Settings belong to a person: a session's user (an API token has no settings of its own). */
export function ownUserId(request: FastifyRequest): string {
  const p = request.principal!;
  if (p.kind !== 'user') throw new NotificationErrors.NotAUser();
  return p.id;
}

/** JSON API: GET/PUT /notifications/settings (the caller's own, audited), GET /notifications/deliveries. */
export function notificationRoutes(deps: { db: Db; audit: AuditLog }): FastifyPluginAsync {
  const scoped = scopedServices(deps.db, (tx) =>
    createSettingsService({ db: tx, audit: deps.audit }),
  );
  return (root) => {
    const app = root.withTypeProvider<ZodTypeProvider>();
    const tags = ['notifications'];
    app.get(
      '/notifications/settings',
      {
        preHandler: app.requirePermission('account:self'),
        schema: { tags, summary: 'Your notification channels, quiet hours and summary' },
      },
      (request) => scoped(request, (s) => s.read(ownUserId(request))),
    );
    app.put(
      '/notifications/settings',
      {
        preHandler: app.requirePermission('account:self'),
        schema: {
          tags,
          summary: 'Change your notification settings (audited; phone as E.164 +254…)',
          body: settingsBody,
        },
      },
      (request) =>
        scoped(request, (s) => s.update(ownUserId(request), request.body, auditActor(request))),
    );
    app.get(
      '/notifications/deliveries',
      {
        preHandler: app.requirePermission('account:self'),
        schema: {
          tags,
          summary:
            'Recent notifications and their state (delivered, pending, failed with the error); all=true: everyone’s, for admins and technicians',
          querystring: z.object({
            all: z.enum(['true', 'false']).default('false'),
            limit: z.coerce.number().int().min(1).max(200).default(50),
          }),
        },
      },
      async (request) => ({
        // Row-level security limits `all` to the caller's own rows unless they see everything.
        deliveries: await scoped(request, (s) =>
          s.deliveries(
            request.query.all === 'true' ? undefined : ownUserId(request),
            request.query.limit,
          ),
        ),
      }),
    );
    return Promise.resolve();
  };
}
