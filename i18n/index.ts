import { core } from './messages/core.ts';
import { devconfig } from './messages/devconfig.ts';
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
export const parts = [core, devconfig] as const;

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

/** The language of a BCP 47 locale ("sw-KE" is Swahili); English for anything else. */
export function langOf(locale: string | undefined): Lang {
  const primary = (locale ?? '').split('-')[0]?.toLowerCase();
  return isLang(primary) ? primary : 'en';
}
