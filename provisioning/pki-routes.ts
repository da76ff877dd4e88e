import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor as actorOf } from '../api/audit-context.ts';
import type { AuditLog } from '../audit/index.ts';
import type { LoadedCa } from './ca-store.ts';
import {
  createEnrolmentAudit,
  defaultEnrolmentLimits,
  EnrolmentThrottle,
  type EnrolmentLimits,
} from './enrolment-guard.ts';
import { PkiErrors, revocationReasons } from './pki-errors.ts';
import type { Pki } from './pki-service.ts';
import type { ScopedServices } from '../api/scoped-services.ts';

const issued = z.object({
  deviceId: z.string(),
  serial: z.string(),
  certificate: z.string(),
  chain: z.string(),
  ca: z.string(),
  notAfter: z.string(),
  brokerUrl: z.string(),
  superseded: z.array(z.string()).optional(),
});
const pem = z.string().max(16 * 1024, 'is too large for a PEM request');

/** Enrolment (token-authenticated), published CA material, certificate inventory and revocation. */
export function pkiRoutes(deps: {
  /** Long-lived: the published CA material and the cached CRL. */
  pki: Pki;
  /** The same service on the request's scoped transaction, for everything that reads or writes the registry. */
  scoped: ScopedServices<Pki>;
  ca: LoadedCa;
  /** Throttling of POST /enroll per source address, and where its failures are recorded. */
  enrolment: { audit: Pick<AuditLog, 'record'>; limits?: EnrolmentLimits | undefined };
}): FastifyPluginAsync {
  return (root) => {
    const app = root.withTypeProvider<ZodTypeProvider>();
    const throttle = new EnrolmentThrottle(deps.enrolment.limits ?? defaultEnrolmentLimits);
    const events = createEnrolmentAudit({
      audit: deps.enrolment.audit,
      onError: (err) => root.log.error({ err }, 'could not record an enrolment event'),
    });
    root.addHook('onClose', () => events.close());
    // Requests admitted by the throttle, until they are answered (or abandoned); the error code if any.
    const admitted = new WeakMap<object, { code: string | undefined }>();
    const finish = (request: { ip: string; id: string }, ok: boolean): void => {
      const a = admitted.get(request);
      if (!a) return;
      admitted.delete(request);
      throttle.end(request.ip, ok);
      if (!ok)
        events.record({
          action: 'security.enrolment_failed',
          ip: request.ip,
          code: a.code ?? 'ABORTED',
          requestId: request.id,
        });
    };

    app.post(
      '/enroll',
      {
        schema: {
          body: z.object({ token: z.string().min(1).max(200), csr: pem }),
          response: { 201: issued },
          tags: ['enrolment'],
        },
        config: { public: true },
        // Before the body is even parsed: a throttled address costs us nothing more.
        onRequest: async (request, reply) => {
          const verdict = throttle.begin(request.ip);
          if (!verdict.allowed) {
            events.record({
              action: 'security.enrolment_throttled',
              ip: request.ip,
              code: `ENROLMENT_THROTTLED:${verdict.reason}`,
              requestId: request.id,
            });
            void reply.header('retry-after', String(verdict.retryAfterSeconds));
            throw new PkiErrors.EnrolmentThrottled(verdict.retryAfterSeconds);
          }
          admitted.set(request, { code: undefined });
          return Promise.resolve();
        },
        onError: async (request, _reply, err) => {
          const a = admitted.get(request);
          // The code the client was sent (the error handler's name for a schema failure).
          if (a)
            a.code =
              'validation' in err && err.validation ? 'VALIDATION_FAILED' : err.code || 'ERROR';
          return Promise.resolve();
        },
        onResponse: (request, reply, done) => (finish(request, reply.statusCode < 400), done()),
        onRequestAbort: (request, done) => (finish(request, false), done()),
      },
      async (request, reply) => {
        // No user: the one-time token is the credential the database verifies; the registry work runs as `system`.
        const result = await deps.scoped(
          request,
          (pki) =>
            pki.enroll(request.body, {
              ip: request.ip,
              userAgent: request.headers['user-agent'] ?? null,
              requestId: request.id,
            }),
          { kind: 'enrolment', secret: request.body.token },
        );
        // Committed: earlier certificates it superseded are in the next CRL served.
        if (result.superseded?.length) deps.pki.invalidateCrl();
        return reply.status(201).send(result);
      },
    );

    app.get('/pki/ca.pem', { config: { public: true } }, async (_req, reply) =>
      reply.type('application/x-pem-file').send(deps.ca.rootCertPem),
    );
    app.get('/pki/chain.pem', { config: { public: true } }, async (_req, reply) =>
      reply.type('application/x-pem-file').send(deps.ca.chainPem),
    );
    app.get('/pki/crl.pem', { config: { public: true } }, async (_req, reply) =>
      reply
        .type('application/x-pem-file')
        .header('cache-control', 'no-cache')
        .send((await deps.pki.crl()).pem),
    );
    app.get('/pki/crl.der', { config: { public: true } }, async (_req, reply) =>
      reply
        .type('application/pkix-crl')
        .header('cache-control', 'no-cache')
        .send((await deps.pki.crl()).der),
    );

    app.get(
      '/certificates',
      {
        preHandler: app.requirePermission('certificates:read'),
        schema: {
          querystring: z.object({
            deviceId: z.string().optional(),
            expiringWithinDays: z.coerce.number().int().min(0).max(3650).optional(),
          }),
        },
      },
      async (request) => ({
        certificates: await deps.scoped(request, (pki) => pki.listCertificates(request.query)),
      }),
    );

    app.post(
      '/certificates/:serial/revoke',
      {
        preHandler: app.requirePermission('certificates:revoke'),
        schema: {
          params: z.object({
            serial: z.string().regex(/^[0-9a-fA-F]{1,40}$/, 'must be a hex serial'),
          }),
          body: z.object({
            reason: z
              .enum(
                Object.keys(revocationReasons) as [
                  keyof typeof revocationReasons,
                  ...(keyof typeof revocationReasons)[],
                ],
              )
              .default('unspecified'),
          }),
        },
      },
      async (request) => {
        const { certificate } = await deps.scoped(request, (pki) =>
          pki.revoke(request.params.serial, request.body.reason, actorOf(request)),
        );
        // Committed: the published CRL is re-issued before the answer goes out.
        deps.pki.invalidateCrl();
        const { number: crlNumber } = await deps.pki.crl();
        return {
          serial: certificate.serial,
          status: certificate.status,
          revokedAt: certificate.revokedAt,
          reason: request.body.reason,
          crlNumber,
        };
      },
    );

    app.post(
      '/devices/:id/enrolment-tokens',
      {
        preHandler: app.requirePermission('enrolment:create'),
        schema: { params: z.object({ id: z.string() }) },
      },
      async (request, reply) =>
        reply
          .status(201)
          .send(
            await deps.scoped(request, (pki) =>
              pki.createEnrolmentToken(request.params.id, actorOf(request)),
            ),
          ),
    );

    app.post(
      '/devices/:id/certificates',
      {
        preHandler: app.requirePermission('certificates:issue'),
        schema: {
          params: z.object({ id: z.string() }),
          body: z.object({ csr: pem }),
          response: { 201: issued },
        },
      },
      async (request, reply) => {
        const result = await deps.scoped(request, (pki) =>
          pki.issueFromCsr(request.params.id, request.body.csr, actorOf(request)),
        );
        if (result.superseded?.length) deps.pki.invalidateCrl();
        return reply.status(201).send(result);
      },
    );

    app.post(
      '/devices/:id/keypair',
      {
        preHandler: app.requirePermission('certificates:issue'),
        schema: {
          params: z.object({ id: z.string() }),
          body: z.object({ pkcs12Password: z.string().min(1).max(200) }),
        },
      },
      async (request, reply) => {
        const result = await deps.scoped(request, (pki) =>
          pki.issueKeyPair(request.params.id, request.body.pkcs12Password, actorOf(request)),
        );
        if (result.superseded?.length) deps.pki.invalidateCrl();
        return reply.status(201).header('cache-control', 'no-store').send(result);
      },
    );

    app.post(
      '/devices/:id/rotate',
      {
        preHandler: app.requirePermission('certificates:issue'),
        schema: { params: z.object({ id: z.string() }) },
      },
      async (request, reply) => {
        await deps.scoped(request, (pki) =>
          pki.requestRotation(request.params.id, actorOf(request)),
        );
        return reply.status(202).send({ deviceId: request.params.id, rotationRequested: true });
      },
    );
    return Promise.resolve();
  };
}
