import { describe, expect, it } from 'vitest';
import { languages, parts, translator } from './index.ts';
import path from 'node:path';
import {
  englishOnlyWords,
  placeholders,
  productSources,
  read,
  relative,
  scanScript,
  scanSource,
  visibleText,
  wordsOf,
} from '../test/catalogue-check.ts';
import { layerOf } from '../test/import-graph.ts';

/**
 * The catalogue is whole and every template uses it: each key in both languages with the same
 * placeholders, no key given twice or never used, and no HTML template in the product with words
 * of its own (they belong in i18n/messages/). The rendered pages are checked in Swahili by
 * catalogue-pages.test.ts.
 */

const messages = (lang: 'en' | 'sw') =>
  parts.flatMap((p) => Object.entries(p[lang] as Record<string, string>));

describe('the catalogue', () => {
  it('gives every key in both languages, non-empty, with the same {placeholders}', () => {
    for (const part of parts) {
      const en = part.en as Record<string, string>;
      const sw = part.sw as Record<string, string>;
      expect(Object.keys(sw).sort()).toEqual(Object.keys(en).sort());
      for (const [key, text] of Object.entries(en)) {
        expect(text.trim(), key).not.toBe('');
        expect(sw[key]?.trim(), key).not.toBe('');
        expect(placeholders(sw[key] ?? ''), `${key}: placeholders`).toEqual(placeholders(text));
      }
    }
  });

  it('defines no key in two parts', () => {
    const seen = new Map<string, number>();
    for (const [key] of messages('en')) seen.set(key, (seen.get(key) ?? 0) + 1);
    expect([...seen].filter(([, n]) => n > 1).map(([k]) => k)).toEqual([]);
  });

  it('has no key that no source uses (a key built at run time is used through its prefix)', () => {
    const sources = productSources()
      .filter((p) => !p.includes('/i18n/messages/'))
      .map(read)
      .join('\n');
    // `metric.${name}` uses every `metric.*` key.
    const prefixes = [...sources.matchAll(/`([a-z][\w.]*\.)\$\{/g)].map((m) => m[1]!);
    const unused = messages('en')
      .map(([k]) => k)
      .filter(
        (k) =>
          !sources.includes(`'${k}'`) &&
          !sources.includes(`"${k}"`) &&
          !prefixes.some((p) => k.startsWith(p)) &&
          // The client script builds some keys with `+`: 'state.' + level.
          !new RegExp(`'${k.replace(/[^.]+$/, '').replace(/\./g, '\\.')}' \\+`).test(sources),
      );
    expect(unused).toEqual([]);
  });

  it('fills placeholders and falls back to English, never to nothing', () => {
    for (const lang of languages) {
      const t = translator(lang);
      expect(t('unit.openAlerts', { count: 3 })).toMatch(/3/);
      expect(t('fleet.counts', { online: 1, offline: 2, total: 3 })).not.toMatch(/\{/);
    }
  });
});

describe('templates', () => {
  it('no HTML template literal in the product has words that are not from the catalogue', () => {
    // The CLI speaks to operators in English (its help and messages are not pages): `<time>` in
    // its usage is not HTML.
    const findings = productSources()
      .filter((p) => p.endsWith('.ts') && layerOf(relative(p)) !== 'cli')
      .flatMap((p) => scanSource(relative(p), read(p)));
    expect(
      findings.map((f) => `${f.file}:${f.line} ${f.words.join(' ')} in ${JSON.stringify(f.text)}`),
    ).toEqual([]);
  });

  it('the scan finds an untranslated word in text, in a read attribute, and beside a placeholder', () => {
    const source = [
      "const a = `<p>${h(f.t('alert.none'))}</p>`;",
      'const b = `<p class="x">Needs collection</p>`;',
      'const c = `<input placeholder="device or unit" name="q">`;',
      'const d = `<td>${n} days left</td>`;',
      'const e = \'<li class="muted">none</li>\';',
      'const g = `<code>thamani firmware</code> <span lang="en">${m}</span> 12 KB · m³`;',
    ].join('\n');
    const found = scanSource('fixture.ts', source);
    expect(found.map((f) => [f.line, f.words])).toEqual([
      [2, ['Needs', 'collection']],
      [3, ['device', 'or', 'unit']],
      [4, ['days', 'left']],
      [5, ['none']],
    ]);
  });

  it('the client scripts write no English of their own (their words come from the page data)', () => {
    const english = englishOnlyWords();
    const findings = productSources()
      .filter((p) => p.includes(`${path.sep}public${path.sep}`) && p.endsWith('.js'))
      .flatMap((p) => scanScript(relative(p), read(p), english));
    expect(findings.map((f) => `${f.file}:${f.line} ${JSON.stringify(f.text)}`)).toEqual([]);
    const fixture = [
      "p.append('Acknowledged by ' + who);",
      "el.textContent = 'no data in this range';",
      "document.querySelector('td[data-online] .badge');",
      "msg('alert.note');",
    ].join('\n');
    expect(scanScript('fixture.js', fixture, english).map((f) => f.line)).toEqual([1, 2]);
  });

  it('reads text and read attributes, not tags, code or English data', () => {
    expect(
      visibleText('<a href="/x" aria-label="Devices">Vifaa</a><code>npm</code>').flatMap(wordsOf),
    ).toEqual(['Vifaa', 'Devices']);
  });
});
