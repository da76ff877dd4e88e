import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import QRCode from 'qrcode';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import { scopedServices } from '../api/scoped-services.ts';
import type { AuditLog } from '../audit/index.ts';
import type { Db } from '../db/client.ts';
import { inTurn } from '../db/scoped.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { createQuarantineService, type Ingest } from '../ingest/index.ts';
import { revocationReasons } from '../provisioning/pki-errors.ts';
import type { Pki } from '../provisioning/pki-service.ts';
import type { DashboardQueries } from './dashboard-repo.ts';
import { DashboardErrors } from './dashboard-errors.ts';
import { createKit, installTechErrors } from './technician-kit.ts';
import {
  enrolmentToken,
  quarantineDetail,
  quarantineList,
  registerForm,
  type UnitOption,
} from './technician-pages.ts';
import { reasonCodes } from '../ingest/index.ts';

/**
 * The technician's work in the browser (issue 19): register and enrol a device, new enrolment
 * tokens, rotate and revoke certificates, suspend and activate, battery and signal history, the
 * quarantine. Each form calls the same service the API route calls, in the caller's verified
 * scope, with the same audit entry (auditActor); nothing here has SQL of its own.
 */
export interface TechnicianDeps {
  db: Db;
  audit: AuditLog;
  queries: DashboardQueries;
  /** Long-lived: the published CRL is re-issued after a revocation, as the API route does. */
  pki: Pick<Pki, 'invalidateCrl' | 'crl'>;
  /** The PKI service on a scoped transaction (the factory the API's routes use). */
  pkiFor: (tx: Db) => Pki;
  ingest: Ingest;
  timeZone?: string;
}

/** Form fields arrive as strings; several values of one field as one comma-separated string (technician.js). */
const list = (s: string | undefined): string[] =>
  (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
const deviceId = z.object({ id: z.string().min(1).max(64) });
const done = ['token', 'rotate', 'revoke', 'suspend', 'activate'] as const;

export function technicianRoutes(deps: TechnicianDeps): FastifyPluginAsync {
  const kit = createKit(deps.timeZone);
  const scoped = scopedServices(deps.db, (tx) => ({
    tx,
    pki: deps.pkiFor(tx),
    devices: createDeviceService({ db: tx, audit: deps.audit }),
    quarantine: createQuarantineService({ db: tx, ingest: deps.ingest, audit: deps.audit }),
  }));
  const unitOptions = async (svc: {
    devices: ReturnType<typeof createDeviceService>;
  }): Promise<UnitOption[]> => {
    const [units, sites] = await inTurn(
      () => svc.devices.listUnits(),
      () => svc.devices.listSites(),
    );
    const siteName = new Map(sites.map((s) => [s.id, s.name]));
    return units.map((u) => ({
      id: u.id,
      name: u.name,
      kind: u.kind,
      site: siteName.get(u.siteId) ?? '',
    }));
  };
  const qr = (token: string) =>
    QRCode.toString(token, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });

  return (root) => {
    const app = root.withTypeProvider<ZodTypeProvider>();
    installTechErrors(app, kit);
    const hide = { hide: true };

    app.get(
      '/manage/devices/new',
      { schema: hide, preHandler: app.requirePermission('enrolment:create') },
      async (request, reply) => {
        const f = kit.fmt(request);
        const units = await scoped(request, unitOptions);
        return kit.page(request, reply, {
          title: f.t('tech.register.title'),
          active: '/manage',
          body: registerForm(units, f),
        });
      },
    );

    // Register and make its enrolment token in one transaction: both commit, or neither does.
    app.post(
      '/manage/devices',
      {
        schema: {
          ...hide,
          body: z.object({
            unit: z.uuid({ error: 'choose a unit' }),
            id: z.string().trim().max(64).optional(),
            hardwareRevision: z.string().trim().max(64).optional(),
          }),
        },
        preHandler: [
          app.requirePermission('devices:write'),
          app.requirePermission('enrolment:create'),
        ],
      },
      async (request, reply) => {
        const actor = auditActor(request);
        const made = await scoped(request, async (s) => {
          const device = await s.devices.addDevice(
            {
              unit: request.body.unit,
              id: request.body.id || undefined,
              hardwareRevision: request.body.hardwareRevision || undefined,
            },
            actor,
          );
          return s.pki.createEnrolmentToken(device.id, actor);
        });
        const f = kit.fmt(request);
        return kit.page(request, reply, {
          title: f.t('tech.enrol.pageTitle', { id: made.deviceId }),
          active: '/manage',
          body: enrolmentToken({ ...made, qrSvg: await qr(made.token), created: true }, f),
        });
      },
    );

    app.post(
      '/manage/devices/:id/enrolment-token',
      {
        schema: { ...hide, params: deviceId },
        preHandler: app.requirePermission('enrolment:create'),
      },
      async (request, reply) => {
        const made = await scoped(request, (s) =>
          s.pki.createEnrolmentToken(request.params.id, auditActor(request)),
        );
        const f = kit.fmt(request);
        return kit.page(request, reply, {
          title: f.t('tech.enrol.pageTitle', { id: made.deviceId }),
          active: '/manage',
          body: enrolmentToken({ ...made, qrSvg: await qr(made.token), created: false }, f),
        });
      },
    );

    app.post(
      '/manage/devices/:id/rotate',
      {
        schema: { ...hide, params: deviceId },
        preHandler: app.requirePermission('certificates:issue'),
      },
      async (request, reply) => {
        await scoped(request, (s) => s.pki.requestRotation(request.params.id, auditActor(request)));
        return reply.redirect(`/fleet/${encodeURIComponent(request.params.id)}?done=rotate`, 303);
      },
    );

    app.post(
      '/manage/devices/:id/revoke',
      {
        schema: {
          ...hide,
          params: deviceId,
          body: z.object({
            serial: z.string().regex(/^[0-9a-fA-F]{1,40}$/, 'must be a hex serial'),
            reason: z.enum(Object.keys(revocationReasons) as [keyof typeof revocationReasons]),
          }),
        },
        preHandler: app.requirePermission('certificates:revoke'),
      },
      async (request, reply) => {
        await scoped(request, async (s) => {
          // The certificate must be this device's: a form cannot revoke another device's by its serial.
          const mine = await s.pki.listCertificates({ deviceId: request.params.id });
          if (!mine.some((c) => c.serial === request.body.serial.toLowerCase()))
            throw new DashboardErrors.CertificateNotOfDevice(
              request.body.serial,
              request.params.id,
            );
          return s.pki.revoke(request.body.serial, request.body.reason, auditActor(request));
        });
        // Committed: the published CRL is re-issued before the answer, as the API route does.
        deps.pki.invalidateCrl();
        await deps.pki.crl();
        return reply.redirect(`/fleet/${encodeURIComponent(request.params.id)}?done=revoke`, 303);
      },
    );

    for (const [verb, status] of [
      ['suspend', 'suspended'],
      ['activate', 'active'],
    ] as const)
      app.post(
        `/manage/devices/:id/${verb}`,
        {
          schema: { ...hide, params: deviceId },
          preHandler: app.requirePermission('devices:write'),
        },
        async (request, reply) => {
          await scoped(request, (s) =>
            s.devices.setStatus(request.params.id, status, auditActor(request)),
          );
          return reply.redirect(
            `/fleet/${encodeURIComponent(request.params.id)}?done=${verb}`,
            303,
          );
        },
      );

    const qFilter = z.object({
      reason: z.enum(['', ...reasonCodes]).optional(),
      deviceId: z.string().trim().max(64).optional(),
      status: z.enum(['', 'open', 'replayed', 'discarded']).default('open'),
    });
    type QFilter = z.infer<typeof qFilter>;
    const listQuarantine = (request: Parameters<typeof scoped>[0], q: QFilter) =>
      scoped(request, (s) =>
        s.quarantine.list({
          reason: q.reason || undefined,
          deviceId: q.deviceId || undefined,
          status: q.status || undefined,
          limit: 200,
        }),
      );

    app.get(
      '/manage/quarantine',
      {
        schema: { ...hide, querystring: qFilter },
        preHandler: app.requirePermission('quarantine:read'),
      },
      async (request, reply) => {
        const f = kit.fmt(request);
        const items = await listQuarantine(request, request.query);
        return kit.page(request, reply, {
          title: f.t('tech.q.title'),
          active: '/manage',
          body: quarantineList(items, request.query, request.principal!, f),
        });
      },
    );

    app.get(
      '/manage/quarantine/:id',
      {
        schema: { ...hide, params: z.object({ id: z.coerce.number().int().positive() }) },
        preHandler: app.requirePermission('quarantine:read'),
      },
      async (request, reply) => {
        const f = kit.fmt(request);
        const [item] = await scoped(request, (s) =>
          s.quarantine.list({ before: request.params.id + 1, limit: 1 }),
        );
        if (!item || item.id !== request.params.id)
          throw new DashboardErrors.QuarantineItemNotFound(String(request.params.id));
        return kit.page(request, reply, {
          title: f.t('tech.q.itemTitle', { id: item.id }),
          active: '/manage',
          body: quarantineDetail(item, request.principal!, f),
        });
      },
    );

    // Bulk: each item in its own transaction (as the API replays one at a time), so one that
    // fails does not undo the others; the page says what happened to each.
    app.post(
      '/manage/quarantine/bulk',
      {
        schema: {
          ...hide,
          body: z.object({
            action: z.enum(['replay', 'discard']),
            ids: z
              .string()
              .max(20_000)
              .transform((s) => list(s).map(Number))
              .pipe(
                z.array(z.number().int().positive()).min(1, 'choose at least one item').max(500),
              ),
          }),
        },
        preHandler: app.requirePermission('quarantine:replay'),
      },
      async (request, reply) => {
        const f = kit.fmt(request);
        const actor = auditActor(request);
        let ok = 0;
        let stored = 0;
        let still = 0;
        const failed: string[] = [];
        for (const id of new Set(request.body.ids)) {
          try {
            if (request.body.action === 'replay') {
              const r = await scoped(request, (s) => s.quarantine.replay(id, actor));
              stored += r.stored;
              if (r.status !== 'replayed') still++;
            } else await scoped(request, (s) => s.quarantine.discard(id, actor));
            ok++;
          } catch (err) {
            const e = err as { statusCode?: number; code?: string };
            if ((e.statusCode ?? 500) >= 500) throw err;
            failed.push(`#${id} ${e.code ?? ''}`.trim());
          }
        }
        const result =
          request.body.action === 'replay'
            ? f.t('tech.q.replayed', { n: ok, stored, still })
            : f.t('tech.q.discarded', { n: ok });
        const items = await listQuarantine(request, { status: 'open' });
        return kit.page(request, reply, {
          title: f.t('tech.q.title'),
          active: '/manage',
          // Nothing done (every item refused): not a success, and nothing was recorded.
          status: ok === 0 ? 409 : 200,
          body: quarantineList(
            items,
            { status: 'open' },
            request.principal!,
            f,
            failed.length
              ? `${result} ${f.t('tech.q.failed', { list: failed.join(', ') })}`
              : result,
          ),
        });
      },
    );
    return Promise.resolve();
  };
}

/** The status line the device page shows after a redirect from one of these actions. */
export function doneText(t: (k: `tech.done.${(typeof done)[number]}`) => string, d: unknown) {
  return typeof d === 'string' && (done as readonly string[]).includes(d)
    ? t(`tech.done.${d as (typeof done)[number]}`)
    : undefined;
}
