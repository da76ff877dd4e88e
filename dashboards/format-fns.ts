/**
 * Dates and ages as people read them: `Intl` in the reader's language (Accept-Language) and one
 * configured time zone (config DASHBOARD_TIME_ZONE, default Africa/Nairobi), never the server's
 * or the browser's zone. The client script formats with the same zone and language (page data).
 */

import { langOf, translator, type Lang, type Translate } from '../i18n/index.ts';

export interface Formatter {
  readonly locale: string;
  /** The language pages are written in (the locale's, English when it is neither en nor sw). */
  readonly lang: Lang;
  /** A message of the catalogue (i18n/) in that language; plain text, escape it like any value. */
  readonly t: Translate;
  readonly timeZone: string;
  /** Date and time with the year: "Jan 1, 2027, 10:44 AM" (en-US), "1 Jan 2027, 10:44" (en-GB). */
  dateTime(value: string | Date | null | undefined): string;
  /** A local calendar day (YYYY-MM-DD of the zone) as "Mon, Nov 30". */
  day(isoDay: string): string;
  /** "19 minutes ago", "in 3 days" (Intl.RelativeTimeFormat). */
  ago(value: string | Date, now?: number): string;
}

const FALLBACK_LOCALE = 'en';
/** Kenya: East Africa Time, UTC+3 all year. */
export const DEFAULT_TIME_ZONE = 'Africa/Nairobi';

/**
 * The first language of an Accept-Language header that Intl can format (RFC 9110 §12.5.4:
 * ordered by q, then by position); English when none is.
 */
export function localeFrom(header: string | undefined): string {
  if (!header) return FALLBACK_LOCALE;
  const tags = header
    .split(',')
    .slice(0, 20)
    .map((part, i) => {
      const [tag = '', ...params] = part.trim().split(';');
      const q = Number(
        params
          .map((p) => p.trim())
          .find((p) => p.startsWith('q='))
          ?.slice(2) ?? '1',
      );
      return { tag: tag.trim(), q: Number.isFinite(q) ? q : 0, i };
    })
    .filter((t) => t.q > 0 && t.tag !== '*' && /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/.test(t.tag))
    .sort((a, b) => b.q - a.q || a.i - b.i);
  for (const t of tags) {
    try {
      const [supported] = Intl.DateTimeFormat.supportedLocalesOf([t.tag]);
      if (supported) return supported;
    } catch {
      // A tag Intl rejects (structurally valid but not BCP 47) is skipped.
    }
  }
  return FALLBACK_LOCALE;
}

const units: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 86_400],
  ['month', 30 * 86_400],
  ['week', 7 * 86_400],
  ['day', 86_400],
  ['hour', 3_600],
  ['minute', 60],
  ['second', 1],
];

export function createFormatter(locale: string, timeZone: string): Formatter {
  const full = new Intl.DateTimeFormat(locale, {
    timeZone,
    dateStyle: 'medium',
    timeStyle: 'short',
  });
  const dayFmt = new Intl.DateTimeFormat(locale, {
    timeZone: 'UTC',
    weekday: 'short',
    month: 'short',
    day: 'numeric',
  });
  const rel = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' });
  return {
    locale,
    lang: langOf(locale),
    t: translator(langOf(locale)),
    timeZone,
    dateTime: (value) => (value == null ? '—' : full.format(new Date(value))),
    day: (isoDay) => dayFmt.format(new Date(`${isoDay}T00:00:00Z`)),
    ago(value, now = Date.now()) {
      const s = Math.round((new Date(value).getTime() - now) / 1000);
      for (const [unit, size] of units)
        if (Math.abs(s) >= size || unit === 'second') return rel.format(Math.trunc(s / size), unit);
      return rel.format(0, 'second');
    },
  };
}

/**
 * The locale a page is written in: the language the user chose (users.language), with the
 * browser's regional variant when it is the same language ("sw-KE"), else the browser's
 * (Accept-Language), else English.
 */
export function pageLocale(chosen: Lang | null | undefined, acceptLanguage?: string): string {
  const browser = localeFrom(acceptLanguage);
  if (!chosen || langOf(browser) === chosen) return browser;
  return chosen;
}

/** One Formatter per locale, made once: what each request's pages and messages use. */
export function formatterFor(timeZone: string) {
  const made = new Map<string, Formatter>();
  return (request: {
    headers: { 'accept-language'?: string };
    principal?: { language?: Lang | null } | null;
  }): Formatter => {
    const locale = pageLocale(request.principal?.language, request.headers['accept-language']);
    let f = made.get(locale);
    if (!f) made.set(locale, (f = createFormatter(locale, timeZone)));
    return f;
  };
}
