import { isMessageKey, translateOr, translator, type Lang, type MessageKey } from './index.ts';

/**
 * A feature's refusal (an @fastify/error with a code) in the reader's language. The service's
 * message stays English (logs, the API's JSON `message`); pages say the catalogue's
 * `errorCode.<CODE>` sentence, filled with the values the service put in its message.
 *
 * The values are read back from the message by the error's own template: @fastify/error keeps
 * only the formatted text, but `new err.constructor()` formats the template with no values, so
 * "Unit %s not found" is recovered and matched. A value that is itself English prose (a detail
 * such as "'to' is before 'from'") is left out of the translated sentence and shown apart, marked
 * as English, so nothing the service said is lost.
 */

export interface ErrorLike {
  code?: unknown;
  message?: unknown;
  statusCode?: unknown;
  validation?: unknown;
  constructor?: unknown;
}

export interface ErrorText {
  /** The sentence in the reader's language. */
  text: string;
  /** The service's own English message, when `text` had to leave a part of it out. */
  detail?: string;
  /** Names of fields a schema refused, as they appear in `text` (identifiers, not words). */
  fields?: string[];
}

const specifier = /%[sdifjoOc%]/g;

/** The values a message was made of, by its template ("Unit %s not found"), or undefined. */
export function valuesOf(template: string, message: string): string[] | undefined {
  const parts = template.split(/(%[sdifjoOc%])/);
  let pattern = '^';
  for (const p of parts) {
    if (p === '%%') pattern += '%';
    else if (specifier.test(p)) pattern += '([\\s\\S]*?)';
    else pattern += p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    specifier.lastIndex = 0;
  }
  const m = new RegExp(`${pattern}$`).exec(message);
  return m ? m.slice(1) : undefined;
}

/** The unformatted template of a @fastify/error instance ("Unit %s not found"), if it is one. */
export function templateOf(err: ErrorLike): string | undefined {
  const Made = err.constructor;
  if (typeof Made !== 'function' || Made === Error || typeof err.code !== 'string')
    return undefined;
  try {
    const blank = new (Made as new () => { code?: unknown; message?: unknown })();
    return blank.code === err.code && typeof blank.message === 'string' ? blank.message : undefined;
  } catch {
    return undefined;
  }
}

/** The catalogue key of an error code. */
export const errorCodeKey = (code: string): string => `errorCode.${code}`;

const statusKeys: Record<number, MessageKey> = {
  400: 'errorCode.status400',
  401: 'errorCode.status401',
  403: 'errorCode.status403',
  404: 'errorCode.status404',
  409: 'errorCode.status409',
  413: 'errorCode.status413',
  415: 'errorCode.status415',
  429: 'errorCode.status429',
};

/** Which fields a schema refused ("/from", "/to"), from Fastify's validation list. */
function fieldsOf(validation: unknown): string[] {
  if (!Array.isArray(validation)) return [];
  const names = validation.map((v: { instancePath?: unknown; params?: unknown }) => {
    const p = typeof v.instancePath === 'string' ? v.instancePath.replace(/^\//, '') : '';
    return p.replace(/\//g, '.');
  });
  return [...new Set(names.filter(Boolean))];
}

export function errorText(err: ErrorLike, lang: Lang): ErrorText {
  const t = translator(lang);
  const message = typeof err.message === 'string' ? err.message : '';
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
  if (status >= 500) return { text: t('errorCode.INTERNAL') };
  if (err.validation !== undefined) {
    const fields = fieldsOf(err.validation);
    return fields.length > 0
      ? { text: t('errorCode.VALIDATION_FAILED', { fields: fields.join(', ') }), fields }
      : { text: t('errorCode.status400') };
  }
  const code = typeof err.code === 'string' ? err.code : '';
  const key = errorCodeKey(code);
  const template = templateOf(err);
  const values = template !== undefined ? valuesOf(template, message) : undefined;
  if (isMessageKey(key) && values) {
    // A value that is a state or a kind ("retired", "biodigester") is a word: said in the language.
    const vars = Object.fromEntries(
      values.map((v, i) => [String(i), translateOr(t, `errorValue.${v}`, v)]),
    );
    const english = translator('en')(key, vars);
    // Every value the service gave is in the sentence: the translation says it all.
    const whole = values.every((_, i) => translator('en')(key).includes(`{${i}}`));
    if (whole) return { text: t(key, vars) };
    if (lang === 'en') return { text: message || english };
    return { text: t(key, vars), detail: message };
  }
  // An error with no template of ours (Fastify's own, a bare code): said by its status.
  const fallback = statusKeys[status] ?? 'errorCode.status400';
  return message ? { text: t(fallback), detail: message } : { text: t(fallback) };
}
