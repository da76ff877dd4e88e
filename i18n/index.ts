import { account } from './messages/account.ts';
import { alerts } from './messages/alerts.ts';
import { core } from './messages/core.ts';
import { fleet } from './messages/fleet.ts';
import { metrics } from './messages/metrics.ts';
import { pages } from './messages/pages.ts';
import { field } from './messages/field.ts';
import { notifications } from './messages/notifications.ts';
import { mrv } from './messages/mrv.ts';
import { mrvSite } from './messages/mrv-site.ts';
import { technician } from './messages/technician.ts';
import { devconfig } from './messages/devconfig.ts';
import { errors } from './messages/errors.ts';
import { alertOverrides } from './messages/alert-overrides.ts';
import { forms } from './messages/forms.ts';
import type { Part } from './part.ts';

export { definePart, type Part } from './part.ts';

/**
 * The languages every page, alert and notification is written in: English and Swahili, the two
 * official languages of Kenya. A user's choice wins; before sign-in, the browser's language
 * (Accept-Language); English otherwise.
 *
 * Messages live in parts (one file per area under ./messages), each giving every key in both
 * languages: the types refuse a part whose Swahili lacks a key its English has, or has one more.
 */
export const languages = ['en', 'sw'] as const;
export type Lang = (typeof languages)[number];

export const isLang = (v: unknown): v is Lang => v === 'en' || v === 'sw';

/** Every part, merged; a key given by two parts is a mistake the catalogue test catches. */
export const parts = [
  forms,
  core,
  metrics,
  pages,
  fleet,
  alerts,
  account,
  field,
  notifications,
  mrv,
  technician,
  devconfig,
  mrvSite,
  errors,
  alertOverrides,
] as const;

type KeysOf<P> = P extends Part<infer K> ? K : never;
export type MessageKey = KeysOf<(typeof parts)[number]>;

const catalogue: Record<Lang, Record<string, string>> = {
  en: Object.assign({}, ...parts.map((p) => p.en)) as Record<string, string>,
  sw: Object.assign({}, ...parts.map((p) => p.sw)) as Record<string, string>,
};

export type Vars = Record<string, string | number>;
export type Translate = (key: MessageKey, vars?: Vars) => string;

/**
 * The message for a key in one language, with `{name}` placeholders filled. Plain text: callers
 * escape it for HTML like any other value.
 */
export function translator(lang: Lang): Translate {
  const messages = catalogue[lang];
  return (key, vars) => {
    const text = messages[key] ?? catalogue.en[key] ?? key;
    return vars ? text.replace(/\{(\w+)\}/g, (m, name: string) => String(vars[name] ?? m)) : text;
  };
}

/** Whether a key built at run time (`metric.${name}`) is in the catalogue. */
export const isMessageKey = (key: string): key is MessageKey => Object.hasOwn(catalogue.en, key);

/** The message for a key built at run time, or `fallback` when the catalogue has no such key. */
export function translateOr(t: Translate, key: string, fallback: string, vars?: Vars): string {
  return isMessageKey(key) ? t(key, vars) : fallback;
}

/**
 * The messages with these keys, unfilled, for the client script (page data): it fills `{name}`
 * the same way. Only the keys a page needs travel, in the page's language.
 */
export function messagesFor(lang: Lang, keys: readonly MessageKey[]): Record<string, string> {
  return Object.fromEntries(keys.map((k) => [k, catalogue[lang][k] ?? catalogue.en[k] ?? k]));
}

/** The language of a BCP 47 locale ("sw-KE" is Swahili); English for anything else. */
export function langOf(locale: string | undefined): Lang {
  const primary = (locale ?? '').split('-')[0]?.toLowerCase();
  return isLang(primary) ? primary : 'en';
}
