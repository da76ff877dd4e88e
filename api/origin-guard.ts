import type { FastifyInstance } from 'fastify';
import { ApiErrors } from './errors.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

type Headers = Record<string, string | string[] | undefined>;

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/**
 * Why a state-changing request must be refused as cross-site, or undefined when it may go on.
 * Browsers say where a request comes from; other clients (curl, the CLI, simulators) send
 * neither header and are judged by their credentials alone.
 * - `Sec-Fetch-Site` (Fetch Metadata, sent by current browsers) is authoritative: only
 *   `same-origin` passes (`same-site` is a sibling host, `cross-site` another site, `none` a
 *   request the user typed, which never carries a form body).
 * - Without it, `Origin` (RFC 6454 §7) must be one of ours. `Origin: null` (opaque: sandboxed
 *   frames, data: URLs, our own pages under `Referrer-Policy: no-referrer`) passes only when
 *   Sec-Fetch-Site vouches for it.
 * Applies to /login too: a cross-site form that signs the victim's browser into the attacker's
 * account (login CSRF) has no session, so a CSRF token cannot stop it.
 */
export function crossSiteProblem(
  method: string,
  headers: Headers,
  allowedOrigins: ReadonlySet<string>,
): string | undefined {
  if (SAFE_METHODS.has(method.toUpperCase())) return undefined;
  const site = one(headers['sec-fetch-site'])?.toLowerCase();
  const origin = one(headers.origin);
  if (site !== undefined) {
    if (site !== 'same-origin') return `Sec-Fetch-Site: ${site}`;
    if (
      origin !== undefined &&
      origin !== 'null' &&
      !allowedOrigins.has(origin.toLowerCase()) &&
      !sameHost(origin, headers)
    )
      return `Origin: ${origin}`;
    return undefined;
  }
  if (origin === undefined) return undefined;
  if (origin === 'null') return 'Origin: null';
  if (!allowedOrigins.has(origin.toLowerCase()) && !sameHost(origin, headers))
    return `Origin: ${origin}`;
  return undefined;
}

/** Origin equals https://<Host>: a browser fetching from the page it got from this server under that name. */
function sameHost(origin: string, headers: Headers): boolean {
  const host = one(headers.host);
  return host !== undefined && origin.toLowerCase() === `https://${host.toLowerCase()}`;
}

/** Refuses cross-site state-changing requests with 403 CROSS_SITE_REQUEST, before the body is read. */
export function installOriginGuard(
  app: FastifyInstance,
  opts: { allowedOrigins: readonly string[] },
): void {
  const allowed = new Set(opts.allowedOrigins.map((o) => new URL(o).origin.toLowerCase()));
  app.addHook('onRequest', (request, _reply, done) => {
    const problem = crossSiteProblem(request.method, request.headers, allowed);
    done(problem ? new ApiErrors.CrossSite(problem) : undefined);
  });
}
