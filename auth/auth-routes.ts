import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import { ApiErrors } from '../api/errors.ts';
import { SESSION_COOKIE } from './authenticator.ts';
import type { SessionService } from './session-service.ts';
import type { ScopedServices } from '../api/scoped-services.ts';
import type { UserService } from './user-service.ts';

export interface AuthRoutesDeps {
  sessions: Pick<SessionService, 'login' | 'logout'>;
  /** Spending a link: no user yet, the link's secret opens the change (migration 0019). */
  users: Pick<UserService, 'completeLink'>;
  /** The signed-in user's own data, in their verified scope. */
  scopedUsers: ScopedServices<Pick<UserService, 'exportAccount'>>;
  sessionMaxSeconds: number;
}

const userOut = z.object({
  id: z.string(),
  username: z.string(),
  displayName: z.string(),
  role: z.string(),
});
const credentials = z.object({
  username: z.string().min(1).max(128),
  password: z.string().min(1).max(256),
});

export function setSessionCookie(
  reply: FastifyReply,
  sessionId: string,
  maxAgeSeconds: number,
): void {
  reply.setCookie(SESSION_COOKIE, sessionId, {
    signed: true,
    httpOnly: true,
    secure: true,
    sameSite: 'strict',
    path: '/',
    maxAge: maxAgeSeconds,
  });
}

/** /api/v1/auth: sign in and out, the current session, setup/reset links, own-data export. */
export function authRoutes(deps: AuthRoutesDeps): FastifyPluginAsync {
  return (base) => {
    const app = base.withTypeProvider<ZodTypeProvider>();

    app.post(
      '/auth/login',
      // Credentials fit in far less: a sign-in body is read by anyone, before any check.
      {
        bodyLimit: 4096,
        schema: {
          tags: ['auth'],
          summary: 'Sign in; sets the session cookie',
          body: credentials,
          response: { 200: z.object({ user: userOut, csrfToken: z.string() }) },
        },
      },
      async (request, reply) => {
        try {
          const { sessionId, csrfToken, user } = await deps.sessions.login(
            request.body,
            auditActor(request),
          );
          setSessionCookie(reply, sessionId, deps.sessionMaxSeconds);
          return { user, csrfToken };
        } catch (err) {
          const retryAfter = (err as { retryAfterSeconds?: number }).retryAfterSeconds;
          if (retryAfter !== undefined) void reply.header('retry-after', String(retryAfter));
          throw err;
        }
      },
    );

    app.post(
      '/auth/logout',
      {
        preHandler: app.requirePermission('account:self'),
        schema: { tags: ['auth'], summary: 'End this session', response: { 204: z.null() } },
      },
      async (request, reply) => {
        const session = request.principal?.session;
        if (!session) throw new ApiErrors.BadRequest('not signed in with a session');
        await deps.sessions.logout(session.idHash, auditActor(request));
        void reply.clearCookie(SESSION_COOKIE, {
          path: '/',
          secure: true,
          httpOnly: true,
          sameSite: 'strict',
        });
        return reply.status(204).send(null);
      },
    );

    app.get(
      '/auth/session',
      {
        preHandler: app.requirePermission('account:self'),
        schema: {
          tags: ['auth'],
          summary: 'Who am I; the CSRF token for state-changing requests',
          response: {
            200: z.object({
              id: z.string(),
              role: z.string(),
              kind: z.string(),
              displayName: z.string(),
              csrfToken: z.string().nullable(),
            }),
          },
        },
      },
      (request) => {
        const p = request.principal!;
        return {
          id: p.id,
          role: p.role,
          kind: p.kind,
          displayName: p.displayName,
          csrfToken: p.session?.csrfToken ?? null,
        };
      },
    );

    app.post(
      '/auth/password',
      {
        bodyLimit: 4096,
        schema: {
          tags: ['auth'],
          summary: 'Set a password with a single-use setup or reset link token',
          body: z.object({
            token: z.string().min(10).max(200),
            password: z.string().min(1).max(256),
          }),
          response: { 200: z.object({ user: userOut }) },
        },
      },
      async (request) => ({
        user: await deps.users.completeLink(
          request.body.token,
          request.body.password,
          auditActor(request),
        ),
      }),
    );

    app.get(
      '/me/export',
      {
        preHandler: app.requirePermission('account:self'),
        schema: { tags: ['privacy'], summary: 'Everything held about the signed-in user (JSON)' },
      },
      async (request, reply) => {
        const p = request.principal!;
        if (p.kind !== 'user')
          throw new ApiErrors.BadRequest('only users have account data; API tokens do not');
        void reply.header('content-disposition', 'attachment; filename="thamani-account.json"');
        return deps.scopedUsers(request, (users) => users.exportAccount(p.id));
      },
    );
    return Promise.resolve();
  };
}
