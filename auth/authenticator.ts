import { timingSafeEqual } from 'node:crypto';
import { fastifyCookie } from '@fastify/cookie';
import type { Authenticator, Principal } from './principal.ts';
import type { SessionService } from './session-service.ts';
import { AuthErrors } from './auth-errors.ts';
import type { ScopeCredential } from '../db/scoped.ts';

/** `__Host-`: the browser only accepts it Secure, Path=/ and without Domain (RFC 6265bis §4.1.3.2). */
export const SESSION_COOKIE = '__Host-thamani_session';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

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
        if (typeof given !== 'string' || !sameSecret(given, session.csrfToken))
          throw new AuthErrors.CsrfFailed();
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
