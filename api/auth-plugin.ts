import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { Authenticator, Principal } from '../auth/principal.ts';
import { can, type Permission } from '../auth/permissions.ts';
import { ApiErrors } from './errors.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler for a route: the caller must be authenticated and its role must hold `permission`. */
    requirePermission(permission: Permission): preHandlerAsyncHookHandler;
  }
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

/** Shared by every route plugin (hence fastify-plugin): authentication, then the permission matrix. */
export const authPlugin = fp<{ authenticator: Authenticator }>(
  (app, opts, done) => {
    app.decorateRequest('principal', undefined);
    app.decorate('requirePermission', (permission: Permission) => {
      return async (request: FastifyRequest, _reply: FastifyReply) => {
        request.principal ??= await opts.authenticator.authenticate(request);
        const principal = request.principal;
        if (!principal) throw new ApiErrors.Unauthenticated();
        if (!can(principal.role, permission)) throw new ApiErrors.Forbidden(permission);
      };
    });
    done();
  },
  { name: 'thamani-auth' },
);
