import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import { escapeHtml } from '../api/escape-html.ts';
// layer: the sign-in pages share the dashboards' reading of Accept-Language and the user's choice
import { pageLocale } from '../dashboards/format-fns.ts';
import { isMessageKey, langOf, translator, type Lang, type Translate } from '../i18n/index.ts';
import { setSessionCookie } from './auth-routes.ts';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from './password-policy.ts';
import type { SessionService } from './session-service.ts';
import type { UserService } from './user-service.ts';

/** The reader's language: before sign-in, the browser's (Accept-Language); English otherwise. */
function langFor(request: FastifyRequest): Lang {
  return langOf(pageLocale(request.principal?.language, request.headers['accept-language']));
}

function page(
  reply: FastifyReply,
  lang: Lang,
  status: number,
  title: string,
  body: string,
): FastifyReply {
  // No inline script or style: the CSP (default-src 'self') would refuse them anyway.
  return reply
    .status(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('vary', 'accept-language')
    .send(
      // The dashboards' stylesheet (served at /assets/) and a viewport: a phone renders the page at its own width.
      `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)} · Thamani IoT</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/app.css"></head><body class="auth"><header><span class="brand">Thamani</span></header><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`,
    );
}

/**
 * A refusal in the reader's language, by its error code (the services' messages are English,
 * for logs and the API); a code the catalogue does not know reads as a general retry hint.
 */
function errorText(t: Translate, err: unknown): string {
  const e = err as { code?: string; retryAfterSeconds?: number };
  const key = `auth.err.${e.code ?? ''}`;
  const vars = { seconds: e.retryAfterSeconds ?? 1, min: MIN_PASSWORD_LENGTH };
  return isMessageKey(key) ? t(key, vars) : t('auth.err.other');
}

function message(text: string | undefined): string {
  return text ? `<p role="alert">${escapeHtml(text)}</p>` : '';
}

function loginForm(t: Translate, error?: string): string {
  return `${message(error)}<form class="auth-form" method="post" action="/login"><label>${escapeHtml(t('auth.username'))} <input name="username" autocomplete="username" autocapitalize="none" required></label><label>${escapeHtml(t('auth.password'))} <input name="password" type="password" autocomplete="current-password" required></label><button type="submit">${escapeHtml(t('auth.signIn'))}</button></form>`;
}

function passwordForm(
  t: Translate,
  purpose: 'setup' | 'reset',
  token: string,
  error?: string,
): string {
  return `${message(error)}<form class="auth-form" method="post" action="/${purpose}"><input type="hidden" name="token" value="${escapeHtml(token)}"><label>${escapeHtml(t('auth.newPassword'))} <small>${escapeHtml(t('auth.passwordHint', { min: MIN_PASSWORD_LENGTH }))}</small> <input name="password" type="password" autocomplete="new-password" minlength="${MIN_PASSWORD_LENGTH}" maxlength="${MAX_PASSWORD_LENGTH}" required></label><button type="submit">${escapeHtml(t('auth.setPassword'))}</button></form>`;
}

const form = z.record(z.string(), z.string());

/**
 * Minimal server-rendered pages: sign-in, first-login setup and password reset, in the
 * browser's language (the signed-in user's choice is PUT /api/v1/users/me/language).
 */
export function pagesRoutes(deps: {
  sessions: Pick<SessionService, 'login'>;
  users: Pick<UserService, 'completeLink'>;
  sessionMaxSeconds: number;
}): FastifyPluginAsync {
  return (base) => {
    const app = base.withTypeProvider<ZodTypeProvider>();
    const hide = { hide: true };

    app.get('/login', { schema: hide }, (request, reply) => {
      const lang = langFor(request);
      const t = translator(lang);
      return page(reply, lang, 200, t('auth.signIn'), loginForm(t));
    });
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
          const lang = langFor(request);
          const t = translator(lang);
          return page(reply, lang, status, t('auth.signIn'), loginForm(t, errorText(t, err)));
        }
      },
    );

    for (const purpose of ['setup', 'reset'] as const) {
      const titleKey = purpose === 'setup' ? 'auth.chooseTitle' : 'auth.resetTitle';
      app.get(
        `/${purpose}`,
        { schema: { ...hide, querystring: z.object({ token: z.string().max(200).default('') }) } },
        (request, reply) => {
          const lang = langFor(request);
          const t = translator(lang);
          return page(reply, lang, 200, t(titleKey), passwordForm(t, purpose, request.query.token));
        },
      );
      app.post(
        `/${purpose}`,
        { bodyLimit: 4096, schema: { ...hide, body: form } },
        async (request, reply) => {
          const lang = langFor(request);
          const t = translator(lang);
          try {
            await deps.users.completeLink(
              request.body.token ?? '',
              request.body.password ?? '',
              auditActor(request),
            );
            return page(
              reply,
              lang,
              200,
              t('auth.passwordSet'),
              `<p>${escapeHtml(t('auth.passwordSetText'))} <a href="/login">${escapeHtml(t('auth.signIn'))}</a></p>`,
            );
          } catch (err) {
            const status = (err as { statusCode?: number }).statusCode ?? 500;
            if (status >= 500) throw err;
            return page(
              reply,
              lang,
              status,
              t(titleKey),
              passwordForm(t, purpose, request.body.token ?? '', errorText(t, err)),
            );
          }
        },
      );
    }

    return Promise.resolve();
  };
}
