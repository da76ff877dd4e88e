import { timingSafeEqual } from 'node:crypto';
import { fastifyCookie } from '@fastify/cookie';
import type { Authenticator, Principal } from './principal.ts';
import type { SessionService } from './session-service.ts';
import { AuthErrors } from './auth-errors.ts';
import type { ScopeCredential } from '../db/scoped.ts';

/** `__Host-`: the browser only accepts it Secure, Path=/ and without Domain (RFC 6265bis §4.1.3.2). */
export const SESSION_COOKIE = '__Host-thamani_session';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** The hidden field a page's form carries the session's CSRF token in (forms work without JavaScript). */
export const CSRF_FIELD = '_csrf';
/** The token a form-encoded request must still show in its body (checked once the body is parsed). */
const PENDING = Symbol.for('thamani.csrfPending');
/** Set once the body was parsed and checked: a later authentication (in a handler) checks at once. */
const PARSED = Symbol.for('thamani.csrfBodyParsed');
type Pending = { [PENDING]?: string; [PARSED]?: true; body?: unknown };

const isFormBody = (contentType: string | string[] | undefined): boolean =>
  String(contentType ?? '')
    .split(';')[0]!
    .trim()
    .toLowerCase() === 'application/x-www-form-urlencoded';

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A credential that JSON.stringify and pino leave out (its secret is a live bearer secret). */
function hidden(credential: { kind: 'session' | 'api-token'; secret: string }): ScopeCredential {
  return Object.defineProperty({ kind: credential.kind }, 'secret', {
    value: credential.secret,
    enumerable: false,
  }) as ScopeCredential;
}

/**
 * Users and automation: `Authorization: Bearer thm_…` (API token, no CSRF: browsers never send
 * it on their own) or the signed session cookie, where every state-changing request must carry
 * the session's synchronizer token in `x-csrf-token`.
 */
export function createAuthenticator(deps: {
  sessions: Pick<SessionService, 'bySessionId' | 'byApiToken'>;
  cookieSecret: string;
}): Authenticator {
  return {
    async authenticate(request, opts) {
      const header = request.headers.authorization;
      if (typeof header === 'string' && header.startsWith('Bearer ')) {
        const secret = header.slice('Bearer '.length).trim();
        const token = await deps.sessions.byApiToken(secret);
        if (!token) return undefined;
        return {
          id: `token:${token.id}`,
          role: token.role,
          kind: 'api-token',
          displayName: `API token ${token.name}`,
          credential: hidden({ kind: 'api-token', secret }),
        } satisfies Principal;
      }
      const cookieHeader = request.headers.cookie;
      if (typeof cookieHeader !== 'string') return undefined;
      const raw = fastifyCookie.parse(cookieHeader)[SESSION_COOKIE];
      if (!raw) return undefined;
      const unsigned = fastifyCookie.unsign(raw, deps.cookieSecret);
      if (!unsigned.valid || !unsigned.value) return undefined;
      const session = await deps.sessions.bySessionId(unsigned.value, {
        renew: opts?.renew ?? true,
      });
      if (!session) return undefined;
      if (!SAFE_METHODS.has((request.method ?? 'GET').toUpperCase())) {
        const given = request.headers['x-csrf-token'];
        if (typeof given === 'string') {
          if (!sameSecret(given, session.csrfToken)) throw new AuthErrors.CsrfFailed();
        } else if (isFormBody(request.headers['content-type'])) {
          // A plain HTML form (no script to set the header): its hidden field is checked by
          // checkFormCsrf once the body is parsed, before validation and the handler (or now,
          // when a handler authenticates after that).
          const r = request as unknown as Pending;
          if (r[PARSED]) {
            if (!sameSecret(String(r[PENDING] ?? ''), session.csrfToken))
              throw new AuthErrors.CsrfFailed();
          } else r[PENDING] = session.csrfToken;
        } else throw new AuthErrors.CsrfFailed();
      }
      return {
        id: session.user.id,
        role: session.user.role,
        kind: 'user',
        displayName: session.user.displayName,
        language: session.user.language,
        session: { idHash: session.idHash, csrfToken: session.csrfToken },
        credential: hidden({ kind: 'session', secret: unsigned.value }),
      } satisfies Principal;
    },
  };
}

/**
 * The second half of the synchronizer-token check for a form posted without the header: the
 * body's `_csrf` field must equal the session's token. Runs as a global preValidation hook
 * (api/auth-plugin.ts), so no handler sees a form body whose token was not shown. The field is
 * removed from every form body (routes' schemas never see it).
 */
export function checkFormCsrf(request: { body?: unknown }): void {
  const r = request as Pending;
  const expected = r[PENDING];
  const body = request.body;
  const given =
    body && typeof body === 'object' ? (body as Record<string, unknown>)[CSRF_FIELD] : undefined;
  if (body && typeof body === 'object' && CSRF_FIELD in body)
    delete (body as Record<string, unknown>)[CSRF_FIELD];
  // From here on PENDING holds the token the body showed (for an authentication in a handler).
  r[PARSED] = true;
  r[PENDING] = typeof given === 'string' ? given : undefined;
  if (expected === undefined) return;
  if (typeof given !== 'string' || !sameSecret(given, expected)) {
    // Refused as the header check refuses: before anyone is signed in for this request.
    (request as { principal?: unknown }).principal = undefined;
    throw new AuthErrors.CsrfFailed();
  }
}
