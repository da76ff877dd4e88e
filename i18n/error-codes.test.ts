import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  englishOnlyWords,
  productSources,
  read,
  relative,
  wordsOf,
} from '../test/catalogue-check.ts';
import { errorCodeKey, errorText, templateOf } from './error-text.ts';
import { isMessageKey, translator } from './index.ts';

/**
 * Every error code a feature can throw (each @fastify/error definition in the product, found by
 * reading the sources, so a new one is checked without being listed) has a catalogue entry in
 * English and Swahili; the English entry says what the service says, and the Swahili one is
 * Swahili, with the service's values in it.
 */

type ErrorClass = new (...args: unknown[]) => Error & { code: string; statusCode?: number };

async function errorClasses(): Promise<{ file: string; name: string; Made: ErrorClass }[]> {
  const files = productSources().filter(
    (p) => p.endsWith('.ts') && !p.endsWith('.test.ts') && read(p).includes('createError('),
  );
  expect(files.map(relative)).toEqual(
    expect.arrayContaining(['dashboards/dashboard-errors.ts', 'devices/device-errors.ts']),
  );
  const found = new Map<string, { file: string; name: string; Made: ErrorClass }>();
  const consider = (file: string, name: string, v: unknown) => {
    if (typeof v !== 'function') return;
    try {
      const e = new (v as ErrorClass)();
      if (e instanceof Error && typeof e.code === 'string' && templateOf(e) !== undefined)
        found.set(e.code, { file, name, Made: v as ErrorClass });
    } catch {
      // Not an error class.
    }
  };
  for (const file of files) {
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    for (const [name, v] of Object.entries(mod)) {
      consider(relative(file), name, v);
      if (v && typeof v === 'object')
        for (const [inner, w] of Object.entries(v)) consider(relative(file), `${name}.${inner}`, w);
    }
  }
  return [...found.values()];
}

/** Sample values for a template's specifiers: numbers for %d, identifiers for %s. */
const samplesFor = (template: string, pick: (i: number, numeric: boolean) => string | number) =>
  [...template.matchAll(/%[sdifjoOc]/g)].map((m, i) => pick(i, m[0] !== '%s'));

const english = englishOnlyWords();

describe('the catalogue of error codes', () => {
  it('has every code of every feature in English and Swahili, saying the service’s values', async () => {
    const classes = await errorClasses();
    expect(classes.length).toBeGreaterThan(60);
    const missing: string[] = [];
    const wrong: string[] = [];
    for (const { file, name, Made } of classes) {
      const code = new Made().code;
      const key = errorCodeKey(code);
      if (!isMessageKey(key)) {
        missing.push(`${code} (${file} ${name})`);
        continue;
      }
      const template = templateOf(new Made())!;
      const values = samplesFor(template, (i, numeric) => (numeric ? 40 + i : `bd-x${i}`));
      const err = new Made(...values);
      const en = errorText(err, 'en');
      const sw = errorText(err, 'sw');
      // English: the service's own sentence (the entry mirrors the template, or the message is
      // kept); an entry for a message without values may say it for a person instead.
      if (values.length > 0 && en.text !== err.message)
        wrong.push(`${code}: en "${en.text}" ≠ "${err.message}"`);
      if (sw.text === translator('en')(key) || /\{\w+\}/.test(sw.text))
        wrong.push(`${code}: sw "${sw.text}"`);
      const words = wordsOf(sw.text).filter((w) => english.has(w.toLowerCase()));
      if (words.length > 0) wrong.push(`${code}: English in sw: ${words.join(', ')}`);
      // Each value is in the Swahili sentence, or the English original is shown beside it.
      for (const v of values)
        if (!sw.text.includes(String(v)) && sw.detail !== err.message)
          wrong.push(`${code}: sw loses ${String(v)}`);
    }
    expect(missing).toEqual([]);
    expect(wrong).toEqual([]);
  });

  it('reads back any values a service puts in its message', async () => {
    const classes = await errorClasses();
    const value = fc.oneof(
      fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,20}$/),
      fc.uuid(),
      fc.string({ minLength: 1, maxLength: 30 }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...classes),
        fc.array(value, { minLength: 4, maxLength: 4 }),
        (c, vs) => {
          const template = templateOf(new c.Made())!;
          const values = samplesFor(template, (i, numeric) => (numeric ? vs[i]!.length : vs[i]!));
          const err = new c.Made(...values);
          const sw = errorText(err, 'sw');
          // Nothing the service said is lost: each value is in the sentence or the original beside it.
          for (const v of values)
            expect(
              sw.text.includes(String(v)) || sw.detail === err.message,
              `${err.code} ${String(v)}`,
            ).toBe(true);
          if (values.length > 0) expect(errorText(err, 'en').text).toBe(err.message);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('fails on a code the catalogue does not have (the check can fail)', async () => {
    const { default: createError } = await import('@fastify/error');
    const Unknown = createError('NO_SUCH_CODE_EVER', 'Thing %s refused', 409);
    expect(isMessageKey(errorCodeKey(new Unknown('x').code))).toBe(false);
    // Said by its status, the English kept beside it.
    expect(errorText(new Unknown('x'), 'sw')).toEqual({
      text: translator('sw')('errorCode.status409'),
      detail: 'Thing x refused',
    });
  });
});
