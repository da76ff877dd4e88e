import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { fastifyCookie } from '@fastify/cookie';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import { scopedServices } from '../api/scoped-services.ts';
import type { AuditLog } from '../audit/index.ts';
import { DEFAULT_TIME_ZONE, formatterFor } from '../dashboards/format-fns.ts';
import type { Db } from '../db/client.ts';
import type { ScopeCredential } from '../db/scoped.ts';
import { createMrvRepo } from './mrv-repo.ts';
import { scopedStream } from './scoped-stream.ts';
import { createVerifierRepo } from './verifier-repo.ts';
import { createVerifierService, type VerifierService } from './verifier-service.ts';
import {
  notFoundPage,
  reportListPage,
  reportPage,
  signInPage,
  VERIFIER_ASSETS,
} from './verifier-pages.ts';
import { printableReport } from './verifier-print.ts';

/** `__Host-`: Secure, Path=/, no Domain (RFC 6265bis §4.1.3.2); HttpOnly, SameSite=Strict. */
export const VERIFIER_COOKIE = '__Host-thamani_verifier';

const assets = {
  'verifier.js': 'text/javascript; charset=utf-8',
  'verifier.css': 'text/css; charset=utf-8',
} as const;
const assetText = Object.fromEntries(
  Object.keys(assets).map((name) => [
    name,
    readFileSync(new URL(`./public/${name}`, import.meta.url), 'utf8'),
  ]),
) as Record<keyof typeof assets, string>;

/** The verifier's secret: the cookie set at sign-in, or `Authorization: Bearer thv_…` for scripts. */
function secretOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string' && header.startsWith('Bearer '))
    return header.slice('Bearer '.length).trim() || undefined;
  const cookies = request.headers.cookie;
  if (typeof cookies !== 'string') return undefined;
  return fastifyCookie.parse(cookies)[VERIFIER_COOKIE] || undefined;
}

/** A credential JSON.stringify and pino leave out (its secret is a live bearer secret). */
function credential(secret: string): ScopeCredential {
  return Object.defineProperty({ kind: 'mrv-verifier' }, 'secret', {
    value: secret,
    enumerable: false,
  }) as ScopeCredential;
}

function html(reply: FastifyReply, body: string, status = 200): FastifyReply {
  return reply
    .status(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(body);
}

const isRefused = (err: unknown) => (err as { code?: string }).code === 'SCOPE_REFUSED';

/**
 * /verifier: a verification body's read-only access to the MRV reports of the digesters and
 * periods its token names (docs/mrv.md, "Verifier access"). Authenticated by the token alone
 * (no user account); every query runs in the scope the database verified from it, so row-level
 * security, not this code, decides what is visible. A token revoked or expired is refused on its
 * next request. Every download is audited under `verifier:<token id>`.
 */
export function verifierRoutes(deps: {
  db: Db;
  audit: Pick<AuditLog, 'record'>;
  timeZone?: string;
}): FastifyPluginAsync {
  const repo = createVerifierRepo();
  const mrvRepo = createMrvRepo();
  const scoped = scopedServices(deps.db, (tx) =>
    createVerifierService({ db: tx, repo, mrvRepo, audit: deps.audit }),
  );
  /** A verifier has no user row: the browser's language (Accept-Language), else English. */
  const fmt = formatterFor(deps.timeZone ?? DEFAULT_TIME_ZONE);
  /** Runs fn in the verifier's scope; undefined when there is no token or it opens nothing. */
  async function asVerifier<T>(
    request: FastifyRequest,
    fn: (s: VerifierService) => Promise<T>,
  ): Promise<{ ok: true; value: T } | { ok: false }> {
    const secret = secretOf(request);
    if (!secret) return { ok: false };
    try {
      return { ok: true, value: await scoped(request, fn, credential(secret)) };
    } catch (err) {
      if (isRefused(err)) return { ok: false };
      throw err;
    }
  }
  const refused = (request: FastifyRequest, reply: FastifyReply) =>
    html(reply.clearCookie(VERIFIER_COOKIE, { path: '/' }), signInPage(fmt(request), true), 401);
  const unauthenticated = (reply: FastifyReply) =>
    reply.status(401).send({
      code: 'MRV_VERIFIER_UNAUTHENTICATED',
      message:
        'A live verifier token is required (cookie from /verifier, or Authorization: Bearer)',
    });

  return (base) => {
    const app = base.withTypeProvider<ZodTypeProvider>();
    const hide = { hide: true };
    const id = z.object({ id: z.uuid() });

    app.get('/verifier', { schema: hide }, async (request, reply) => {
      if (!secretOf(request)) return html(reply, signInPage(fmt(request)));
      const r = await asVerifier(request, async (s) => ({
        token: await s.token(),
        reports: await s.reports(),
      }));
      if (!r.ok || !r.value.token) return refused(request, reply);
      return html(reply, reportListPage(fmt(request), r.value.token, r.value.reports));
    });

    app.post(
      '/verifier/session',
      { schema: { ...hide, body: z.object({ token: z.string().trim().min(1).max(200) }) } },
      async (request, reply) => {
        const secret = request.body.token;
        let token;
        try {
          token = await scoped(request, (s) => s.token(), credential(secret));
        } catch (err) {
          if (!isRefused(err)) throw err;
        }
        if (!token) return refused(request, reply);
        const maxAge = Math.max(1, Math.floor((token.expiresAt.getTime() - Date.now()) / 1000));
        return reply
          .setCookie(VERIFIER_COOKIE, secret, {
            path: '/',
            secure: true,
            httpOnly: true,
            sameSite: 'strict',
            maxAge,
          })
          .redirect('/verifier', 303);
      },
    );

    app.post('/verifier/signout', { schema: hide }, (_request, reply) =>
      reply.clearCookie(VERIFIER_COOKIE, { path: '/' }).redirect('/verifier', 303),
    );

    app.get(
      '/verifier/reports/:id',
      { schema: { ...hide, params: id } },
      async (request, reply) => {
        const f = fmt(request);
        const r = await asVerifier(request, async (s) => {
          const report = await s.report(request.params.id);
          return { report, series: await s.series(request.params.id) };
        }).catch((err: { code?: string }) => {
          if (err.code === 'MRV_REPORT_NOT_FOUND') return 'missing' as const;
          throw err;
        });
        if (r === 'missing') return html(reply, notFoundPage(f), 404);
        if (!r.ok) return refused(request, reply);
        const { report, series } = r.value;
        return html(reply, reportPage(f, report.row, report.document, series));
      },
    );

    app.get(
      '/verifier/reports/:id/report.json',
      { schema: { ...hide, params: id } },
      async (request, reply) => {
        const r = await asVerifier(request, (s) =>
          s.download(request.params.id, 'json', auditActor(request)),
        );
        if (!r.ok) return unauthenticated(reply);
        return reply
          .type('application/json')
          .header('cache-control', 'no-store')
          .header('content-disposition', `attachment; filename="mrv-report-${r.value.row.id}.json"`)
          .send(r.value.text);
      },
    );

    app.get(
      '/verifier/reports/:id/report.html',
      { schema: { ...hide, params: id } },
      async (request, reply) => {
        const r = await asVerifier(request, (s) =>
          s.download(request.params.id, 'html', auditActor(request)),
        );
        if (!r.ok) return refused(request, reply);
        return html(reply, printableReport(fmt(request), r.value.document));
      },
    );

    /** A download streamed from the verifier's scope: its readings (CSV) or its leaf hashes. */
    const download = (
      suffix: string,
      type: string,
      filename: (id: string) => string,
      open: (
        s: VerifierService,
        id: string,
        actor: ReturnType<typeof auditActor>,
      ) => AsyncGenerator<string | Buffer>,
    ) =>
      app.get(
        `/verifier/reports/:id/${suffix}`,
        { schema: { ...hide, params: id } },
        async (request, reply) => {
          const secret = secretOf(request);
          if (!secret) return unauthenticated(reply);
          let stream: Readable;
          try {
            stream = await scopedStream<VerifierService>(
              (fn) => scoped(request, fn, credential(secret)),
              (s) => open(s, request.params.id, auditActor(request)),
            );
          } catch (err) {
            if (isRefused(err)) return unauthenticated(reply);
            throw err;
          }
          return reply
            .type(type)
            .header('cache-control', 'no-store')
            .header('content-disposition', `attachment; filename="${filename(request.params.id)}"`)
            .send(stream);
        },
      );
    download(
      'readings.csv',
      'text/csv; charset=utf-8',
      (id) => `mrv-readings-${id}.csv`,
      (s, id, actor) => s.readingsCsv(id, actor),
    );
    download(
      'leaf-hashes.bin',
      'application/octet-stream',
      (id) => `mrv-leaf-hashes-${id}.bin`,
      (s, id, actor) => s.leafHashes(id, actor),
    );

    app.get(
      `${VERIFIER_ASSETS}/:file`,
      { schema: { ...hide, params: z.object({ file: z.enum(['verifier.js', 'verifier.css']) }) } },
      (request, reply) =>
        reply
          .type(assets[request.params.file])
          .header('cache-control', 'public, max-age=3600')
          .send(assetText[request.params.file]),
    );
    return Promise.resolve();
  };
}
