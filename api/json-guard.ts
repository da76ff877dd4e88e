import type { FastifyInstance } from 'fastify';
import createError from '@fastify/error';

/** Nesting deeper than any request of ours needs (the deepest schema nests 4). */
export const MAX_JSON_DEPTH = 32;

export const JsonErrors = {
  TooDeep: createError('JSON_TOO_DEEP', 'JSON nested deeper than %d levels', 400),
};

/**
 * Whether a JSON text nests arrays/objects deeper than `limit`, in one pass over the characters,
 * skipping string contents (and their escapes). Run before JSON.parse: a 1 MB body of nested
 * brackets cost ~0.55 s of CPU in the parser and schema validation before it was refused, and
 * 10 in parallel stalled the server for 6 s (issue 17 §5). This costs microseconds per KB.
 */
export function deeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * Replaces the JSON body parser: the depth check first, then Fastify's own parser (which keeps
 * its __proto__/constructor poisoning checks). Body size is bounded before this runs (the
 * server's bodyLimit, or a route's own).
 */
export function installJsonGuard(app: FastifyInstance, opts: { maxDepth?: number } = {}): void {
  const maxDepth = opts.maxDepth ?? MAX_JSON_DEPTH;
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (deeperThan(body as string, maxDepth))
      return done(new JsonErrors.TooDeep(maxDepth), undefined);
    void parse(request, body as string, done);
  });
}
