import type { ScopeCredential } from '../db/scoped.ts';
import type { Lang } from '../i18n/index.ts';
import type { Role } from './permissions.ts';

/** Who is calling: a signed-in user, an API token acting for a role, or (until real users exist) the admin token. */
export interface Principal {
  /** Stable id recorded in the audit log (a user id, or `token:<id>`). */
  readonly id: string;
  readonly role: Role;
  readonly kind: 'user' | 'api-token' | 'admin-token';
  readonly displayName: string;
  /** The language the user chose for pages and messages (users.language); unset: the browser's. */
  readonly language?: Lang | null;
  /** Set when the request came with a session cookie (logout and the CSRF token need it). */
  readonly session?: { readonly idHash: Buffer; readonly csrfToken: string };
  /**
   * What the database verifies this caller's scope from (db/scoped.ts runScoped): the session
   * secret or API token itself, never a role the code asserts. Not logged, not serialised.
   */
  readonly credential: ScopeCredential;
}

export interface AuthenticateOptions {
  /**
   * Whether this request counts as the user's activity and restarts the session's idle timer
   * (default true). Background requests (the live stream, its re-checks, anything a page does on
   * its own) pass false: a page left open must reach the idle limit.
   */
  renew?: boolean;
}

export interface Authenticator {
  /**
   * The principal behind a request, or undefined when it carries no valid credentials. May throw
   * a coded error (e.g. CSRF_FAILED for a state-changing cookie request without its token).
   */
  authenticate(
    request: { headers: Record<string, string | string[] | undefined>; method?: string },
    opts?: AuthenticateOptions,
  ): Promise<Principal | undefined>;
}
