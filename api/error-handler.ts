import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';

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

/**
 * One shape for every error: { code, message, requestId }. 5xx details stay in the log, never in
 * the response; validation errors say which field and why.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const requestId = request.id;
    if (hasZodFastifySchemaValidationErrors(err)) {
      const details = err.validation.map((v) =>
        `${v.instancePath || '/'} ${v.message ?? 'is invalid'}`.trim(),
      );
      return reply.status(400).send({
        code: 'VALIDATION_FAILED',
        message: `Invalid request: ${details.join('; ')}`,
        requestId,
      });
    }
    const status = err.statusCode ?? 500;
    if (status >= 500) {
      request.log.error({ err }, 'request failed');
      return reply.status(status).send({
        code: 'INTERNAL',
        message: 'Internal error; quote the requestId when reporting it',
        requestId,
      });
    }
    const code = isCoded(err) ? err.code : 'ERROR';
    // Fastify's own client errors (bad JSON, body too large, unsupported media type) keep their codes.
    return reply.status(status).send({ code, message: err.message, requestId });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({
      code: 'NOT_FOUND',
      message: `No route ${request.method} ${request.url.split('?')[0]}`,
      requestId: request.id,
    }),
  );
}
