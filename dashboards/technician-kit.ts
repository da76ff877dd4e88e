import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { can } from '../auth/permissions.ts';
import type { Principal } from '../auth/principal.ts';
import { DEFAULT_TIME_ZONE, formatterFor, type Formatter } from './format-fns.ts';
import { errorText } from '../i18n/error-text.ts';
import { errorBody } from './error-page.ts';
import { h, layout, messagePage } from './html.ts';

/**
 * What the technician's page routes share: the reader's formatter, the page layout with the
 * technician's script and stylesheet, and one error handler that answers a form with a page
 * saying what went wrong (the service's coded error), never a JSON body.
 */

export const techAssets = {
  styles: ['/assets/technician.css'],
  scripts: ['/assets/technician.js'],
};

export function createKit(timeZone = DEFAULT_TIME_ZONE) {
  /** The reader's language (their choice, else Accept-Language), as every dashboard page. */
  const fmt = formatterFor(timeZone);
  /** Text the client script shows (a failed post), in the reader's language. */
  const clientText = (f: Formatter) => ({
    failed: f.t('tech.js.failed'),
    working: f.t('tech.js.working'),
  });
  const send = (reply: FastifyReply, body: string, status = 200): FastifyReply =>
    reply
      .status(status)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(body);
  const page = (
    request: FastifyRequest,
    reply: FastifyReply,
    o: { title: string; active: string; body: string; status?: number; data?: object },
  ): FastifyReply => {
    const f = fmt(request);
    return send(
      reply,
      layout({
        title: o.title,
        principal: request.principal!,
        format: f,
        active: o.active,
        body: o.body,
        data: { page: 'manage', rules: [], tech: clientText(f), ...o.data },
        extra: techAssets,
      }),
      o.status,
    );
  };
  return { fmt, page, send, clientText };
}

export type Kit = ReturnType<typeof createKit>;

/** A checkbox's value in a form body. */
export const formOn = (v: string | undefined): boolean => v === 'on' || v === 'true';
/** Several values of one field, sent comma-separated by technician.js. */
export const formList = (s: string | undefined): string[] =>
  (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

/** Errors of a technician's page or form, as pages in the reader's language. */
export function installTechErrors(app: FastifyInstance, kit: Kit): void {
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
    const status = err.statusCode ?? 500;
    if (status === 401) return reply.redirect('/login', 303);
    // A cross-site request never came from our page: the API's coded JSON answers it.
    if (status >= 500 || err.code === 'CROSS_SITE_REQUEST') throw err;
    const f = kit.fmt(request);
    const principal: Principal | undefined = request.principal;
    const title =
      err.code === 'CSRF_FAILED'
        ? f.t('tech.err.csrf')
        : status === 403
          ? f.t('tech.err.forbidden')
          : status === 404
            ? f.t('tech.err.notFound')
            : f.t('tech.err.failed');
    // The refusal in the reader's language (the service's English kept beside it when the
    // translation leaves part of it out): i18n/error-text.ts.
    const said =
      err.code === 'CSRF_FAILED'
        ? { text: f.t('tech.err.csrfText') }
        : status === 403
          ? { text: f.t('tech.err.forbiddenText') }
          : // A request the route's schema refused (a malformed id in the URL).
            (err as { validation?: unknown }).validation !== undefined
            ? { text: f.t('tech.err.invalidText') }
            : errorText(err, f.lang);
    const text = said.text;
    if (!principal || (status === 403 && err.code !== 'CSRF_FAILED'))
      return kit.send(reply, messagePage(title, text, f), status);
    const back = can(principal.role, 'devices:write') ? '/manage' : '/';
    return kit.page(request, reply, {
      title,
      active: '/manage',
      status,
      body: `${errorBody(said, { code: err.code })}<p><a href="${back}">${h(f.t('tech.err.back'))}</a></p>`,
    });
  });
}
