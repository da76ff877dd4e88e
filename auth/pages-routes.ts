import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import { escapeHtml } from '../api/escape-html.ts';
import { setSessionCookie } from './auth-routes.ts';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from './password-policy.ts';
import type { SessionService } from './session-service.ts';
import type { UserService } from './user-service.ts';

function page(reply: FastifyReply, status: number, title: string, body: string): FastifyReply {
  // No inline script or style: the CSP (default-src 'self') would refuse them anyway.
  return reply
    .status(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(
      // The dashboards' stylesheet (served at /assets/) and a viewport: a phone renders the page at its own width.
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)} · Thamani IoT</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/app.css"></head><body class="auth"><header><span class="brand">Thamani</span></header><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`,
    );
}

function message(text: string | undefined): string {
  return text ? `<p role="alert">${escapeHtml(text)}</p>` : '';
}

function loginForm(error?: string): string {
  return `${message(error)}<form class="auth-form" method="post" action="/login"><label>Username <input name="username" autocomplete="username" autocapitalize="none" required></label><label>Password <input name="password" type="password" autocomplete="current-password" required></label><button type="submit">Sign in</button></form>`;
}

function passwordForm(purpose: 'setup' | 'reset', token: string, error?: string): string {
  return `${message(error)}<form class="auth-form" method="post" action="/${purpose}"><input type="hidden" name="token" value="${escapeHtml(token)}"><label>New password <small>at least ${MIN_PASSWORD_LENGTH} characters; a few unrelated words make a good one</small> <input name="password" type="password" autocomplete="new-password" minlength="${MIN_PASSWORD_LENGTH}" maxlength="${MAX_PASSWORD_LENGTH}" required></label><button type="submit">Set password</button></form>`;
}

const form = z.record(z.string(), z.string());

/** Minimal server-rendered pages: sign-in, first-login setup and password reset. */
export function pagesRoutes(deps: {
  sessions: Pick<SessionService, 'login'>;
  users: Pick<UserService, 'completeLink'>;
  sessionMaxSeconds: number;
}): FastifyPluginAsync {
  return (base) => {
    const app = base.withTypeProvider<ZodTypeProvider>();
    const hide = { hide: true };

    app.get('/login', { schema: hide }, (_request, reply) =>
      page(reply, 200, 'Sign in', loginForm()),
    );
    app.post(
      '/login',
      { bodyLimit: 4096, schema: { ...hide, body: form } },
      async (request, reply) => {
        try {
          const { sessionId } = await deps.sessions.login(
            { username: request.body.username ?? '', password: request.body.password ?? '' },
            auditActor(request),
          );
          setSessionCookie(reply, sessionId, deps.sessionMaxSeconds);
          return reply.redirect('/', 303);
        } catch (err) {
          const status = (err as { statusCode?: number }).statusCode ?? 500;
          if (status >= 500) throw err;
          return page(reply, status, 'Sign in', loginForm((err as Error).message));
        }
      },
    );

    for (const purpose of ['setup', 'reset'] as const) {
      const title = purpose === 'setup' ? 'Choose your password' : 'Reset your password';
      app.get(
        `/${purpose}`,
        { schema: { ...hide, querystring: z.object({ token: z.string().max(200).default('') }) } },
        (request, reply) => page(reply, 200, title, passwordForm(purpose, request.query.token)),
      );
      app.post(
        `/${purpose}`,
        { bodyLimit: 4096, schema: { ...hide, body: form } },
        async (request, reply) => {
          try {
            await deps.users.completeLink(
              request.body.token ?? '',
              request.body.password ?? '',
              auditActor(request),
            );
            return page(
              reply,
              200,
              'Password set',
              '<p>Your password is set. <a href="/login">Sign in</a>.</p>',
            );
          } catch (err) {
            const status = (err as { statusCode?: number }).statusCode ?? 500;
            if (status >= 500) throw err;
            return page(
              reply,
              status,
              title,
              passwordForm(purpose, request.body.token ?? '', (err as Error).message),
            );
          }
        },
      );
    }
    return Promise.resolve();
  };
}
