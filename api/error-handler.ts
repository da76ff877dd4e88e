import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
// layer: a refusal a person meets is a page of the dashboards' shell, in their language
import { errorPage, fromPageScript, wantsPage } from '../dashboards/error-page.ts';
import { DEFAULT_TIME_ZONE, formatterFor } from '../dashboards/format-fns.ts';
import { errorText, type ErrorLike } from '../i18n/error-text.ts';

/** Errors a service may throw that carry their own status (from @fastify/error or a feature's catalogue). */
interface CodedError {
  code: string;
  statusCode?: number;
  message: string;
}

function isCoded(err: unknown): err is CodedError {
  return (
    typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string'
  );
}

/** The path of a same-site Referer, for a "Go back" link; never another site's address. */
function backOf(request: FastifyRequest): string | undefined {
  const referer = request.headers.referer;
  if (!referer || !request.host) return undefined;
  try {
    const u = new URL(referer);
    return u.host === request.host && u.pathname.startsWith('/') && !u.pathname.startsWith('//')
      ? u.pathname + u.search
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One shape for every error: { code, message, requestId } for API clients. 5xx details stay in
 * the log, never in the response; validation errors say which field and why. A browser that
 * followed a link or posted a form (Accept: text/html) gets the same refusal as a page in the
 * reader's language; a page's own script gets the JSON with a translated `text` beside it.
 */
export function installErrorHandler(app: FastifyInstance, timeZone = DEFAULT_TIME_ZONE): void {
  const fmt = formatterFor(timeZone);
  const answer = (
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    body: { code: string; message: string; requestId: string },
    err: ErrorLike,
  ) => {
    if (wantsPage(request.headers.accept)) {
      const f = fmt(request);
      return reply
        .status(status)
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .header('vary', 'accept, accept-language')
        .send(errorPage(err, f, { status, requestId: request.id, back: backOf(request) }));
    }
    if (fromPageScript(request.headers))
      return reply.status(status).send({ ...body, text: errorText(err, fmt(request).lang).text });
    return reply.status(status).send(body);
  };

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const requestId = request.id;
    if (hasZodFastifySchemaValidationErrors(err)) {
      const details = err.validation.map((v) =>
        `${v.instancePath || '/'} ${v.message ?? 'is invalid'}`.trim(),
      );
      return answer(
        request,
        reply,
        400,
        { code: 'VALIDATION_FAILED', message: `Invalid request: ${details.join('; ')}`, requestId },
        err,
      );
    }
    const status = err.statusCode ?? 500;
    if (status >= 500) {
      request.log.error({ err }, 'request failed');
      return answer(
        request,
        reply,
        status,
        {
          code: 'INTERNAL',
          message: 'Internal error; quote the requestId when reporting it',
          requestId,
        },
        { statusCode: status },
      );
    }
    const code = isCoded(err) ? err.code : 'ERROR';
    // Fastify's own client errors (bad JSON, body too large, unsupported media type) keep their codes.
    return answer(request, reply, status, { code, message: err.message, requestId }, err);
  });
  app.setNotFoundHandler((request, reply) =>
    answer(
      request,
      reply,
      404,
      {
        code: 'NOT_FOUND',
        message: `No route ${request.method} ${request.url.split('?')[0]}`,
        requestId: request.id,
      },
      { statusCode: 404 },
    ),
  );
}
