import fp from 'fastify-plugin';
import type {
  FastifyReply,
  FastifyRequest,
  preHandlerAsyncHookHandler,
  RouteOptions,
} from 'fastify';
import type { Authenticator, Principal } from '../auth/principal.ts';
import { can, type Permission } from '../auth/permissions.ts';
import { ApiErrors } from './errors.ts';
import { checkFormCsrf } from '../auth/authenticator.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler for a route: the caller must be authenticated and its role must hold `permission`. */
    requirePermission(permission: Permission): preHandlerAsyncHookHandler;
    /** Every route and the permission it requires (undefined: public). The role × route test walks it. */
    routePermissions: { method: string; url: string; permission: Permission | undefined }[];
  }
  interface FastifyRequest {
    principal: Principal | undefined;
  }
  interface FastifyContextConfig {
    /** A request the user did not make (the live stream): it does not renew the session (isBackground). */
    background?: boolean;
  }
}

const PERMISSION = Symbol.for('thamani.permission');

/** Header a page's script sets on requests it makes on its own (polling): they do not renew the session. */
export const BACKGROUND_HEADER = 'x-thamani-background';

/**
 * A request the user did not make: a route declared `config: { background: true }` (the live
 * stream) or one sent with the background header. It authenticates but does not restart the
 * session's idle timer.
 */
export function isBackground(request: FastifyRequest): boolean {
  return (
    request.routeOptions.config?.background === true ||
    request.headers[BACKGROUND_HEADER] !== undefined
  );
}
type Tagged = preHandlerAsyncHookHandler & { [PERMISSION]?: Permission };

/** The permission a route requires, if it declared one with requirePermission (the matrix test reads it). */
export function routePermission(
  route: Pick<RouteOptions, 'onRequest' | 'preHandler'>,
): Permission | undefined {
  const hooks = [route.onRequest, route.preHandler].flat().filter(Boolean) as Tagged[];
  return hooks.map((h) => h[PERMISSION]).find((p) => p !== undefined);
}

/**
 * Shared by every route plugin (hence fastify-plugin): authentication, then the permission matrix.
 * Whatever hook a route names it in, the check is moved to onRequest, so that an unauthorised
 * caller is refused before its body is read or validated (and cannot learn the schema from 400s).
 */
export const authPlugin = fp<{ authenticator: Authenticator }>(
  (app, opts, done) => {
    app.decorateRequest('principal', undefined);
    app.decorate('requirePermission', (permission: Permission) => {
      const check: Tagged = async (request: FastifyRequest, _reply: FastifyReply) => {
        request.principal ??= await opts.authenticator.authenticate(request, {
          renew: !isBackground(request),
        });
        const principal = request.principal;
        if (!principal) throw new ApiErrors.Unauthenticated();
        if (!can(principal.role, permission)) throw new ApiErrors.Forbidden(permission);
      };
      check[PERMISSION] = permission;
      return check;
    });
    // A form posted without the CSRF header shows the token in its body: checked once parsed.
    app.addHook('preValidation', (request, _reply, done) => {
      try {
        checkFormCsrf(request);
        done();
      } catch (err) {
        done(err as Error);
      }
    });
    const table: { method: string; url: string; permission: Permission | undefined }[] = [];
    app.decorate('routePermissions', table);
    app.addHook('onRoute', (route) => {
      for (const method of [route.method].flat())
        table.push({ method, url: route.url, permission: routePermission(route) });
      const pre = [route.preHandler].flat().filter(Boolean) as Tagged[];
      const checks = pre.filter((h) => h[PERMISSION] !== undefined);
      if (checks.length === 0) return;
      route.preHandler = pre.filter((h) => h[PERMISSION] === undefined);
      route.onRequest = [
        ...checks,
        ...([route.onRequest].flat().filter(Boolean) as Tagged[]),
      ] as RouteOptions['onRequest'];
    });
    done();
  },
  { name: 'thamani-auth' },
);
