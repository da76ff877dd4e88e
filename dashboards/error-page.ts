import { errorText, type ErrorLike, type ErrorText } from '../i18n/error-text.ts';
import type { MessageKey } from '../i18n/index.ts';
import type { Formatter } from './format-fns.ts';
import { h } from './html.ts';

/**
 * A refusal as a person meets it: a page in the reader's language (the same shell as every
 * message page), with the service's own English message kept beside it, marked, when the
 * translation had to leave part of it out. API clients get the JSON problem body instead
 * (api/error-handler.ts decides by `wantsPage`).
 */

/**
 * Whether the request came from a browser that shows the answer as a page: a link followed or a
 * form posted (Accept lists text/html, RFC 9110 §12.5.1, not ranked below JSON). A page's own
 * fetch() sends no such Accept and gets JSON with a translated `text` (see `fromPageScript`).
 */
export function wantsPage(accept: string | undefined): boolean {
  if (!accept) return false;
  let html = 0;
  let json = 0;
  for (const part of accept.split(',').slice(0, 30)) {
    const [type = '', ...params] = part.trim().toLowerCase().split(';');
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    const weight = Number.isFinite(q) ? q : 0;
    if (type.trim() === 'text/html' || type.trim() === 'application/xhtml+xml')
      html = Math.max(html, weight);
    if (type.trim() === 'application/json' || type.trim().endsWith('+json'))
      json = Math.max(json, weight);
  }
  return html > 0 && html >= json;
}

/**
 * Whether a JSON request came from one of our pages' scripts: they, and only they, send the
 * page's CSRF token header (an API client with a bearer token has no page). Their answer's
 * `text` is what the page shows.
 */
export const fromPageScript = (headers: Record<string, unknown>): boolean =>
  typeof headers['x-csrf-token'] === 'string';

const titles: Record<number, MessageKey> = {
  400: 'errorPage.title400',
  401: 'errorPage.title401',
  403: 'errorPage.title403',
  404: 'errorPage.title404',
  409: 'errorPage.title409',
  429: 'errorPage.title429',
};

/** A page's title for a status (a 4xx without its own reads as "Not valid"). */
export const errorTitle = (status: number, f: Pick<Formatter, 't'>): string =>
  f.t(status >= 500 ? 'errorPage.title500' : (titles[status] ?? 'errorPage.title400'));

/** The refusal's sentence, and the English original when it says more, as HTML paragraphs. */
export function errorBody(said: ErrorText, o: { code?: string; requestId?: string } = {}): string {
  const detail = said.detail
    ? `<p class="muted" lang="en"><small>${h(said.detail)}</small></p>`
    : '';
  const code = o.code ? `<code>${h(o.code)}</code>` : '';
  const id = o.requestId ? ` <code>${h(o.requestId)}</code>` : '';
  // Field names are identifiers (`pkcs12Password`), not words: shown as code.
  let text = h(said.text);
  if (said.fields?.length)
    text = text.replace(
      h(said.fields.join(', ')),
      said.fields.map((n) => `<code>${h(n)}</code>`).join(', '),
    );
  return `<p class="notice alert" role="alert">${text}</p>${detail}${code || id ? `<p class="muted">${code}${id}</p>` : ''}`;
}

/** A whole page for a refusal, in `f`'s language; `back` is where "Go back" leads. */
export function errorPage(
  err: ErrorLike,
  f: Pick<Formatter, 't' | 'lang'>,
  o: { status: number; requestId?: string; back?: string; title?: string },
): string {
  const said = errorText(err, f.lang);
  const title = o.title ?? errorTitle(o.status, f);
  const code = typeof err.code === 'string' && o.status < 500 ? err.code : undefined;
  const links =
    o.status === 401
      ? `<a href="/login">${h(f.t('errorPage.signIn'))}</a>`
      : `<a href="${h(o.back ?? '/')}">${h(f.t(o.back ? 'errorPage.back' : 'layout.home'))}</a>`;
  return `<!doctype html><html lang="${f.lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${h(title)} · Thamani IoT</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/app.css"></head>
<body><header><a class="brand" href="/">Thamani</a></header><main id="main"><h1>${h(title)}</h1>${errorBody(said, { code, requestId: o.requestId })}<p>${links}</p></main></body></html>`;
}
