import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { parts } from '../i18n/index.ts';

/**
 * What the catalogue tests (i18n/*.test.ts) look for: words of a page that did not come from the
 * catalogue. Two ways, so neither a new template nor a new page slips through:
 * - in source: the text of every HTML template literal (outside its `${}` and its tags, plus the
 *   attributes a person reads) must have no words, only numbers, units and names;
 * - in a rendered page: in Swahili, no word that only the English catalogue (or English itself)
 *   uses may appear.
 */

/** Words that are the same in both languages: names, units, formats, protocols. */
export const ALLOWED = new Set(
  [
    'Thamani',
    'IoT',
    'English',
    'Kiswahili',
    'pH',
    'kPa',
    'KB',
    'MB',
    'CSV',
    'JSON',
    'SHA',
    'API',
    'HTTP',
    'CLI',
    'MQTT',
    'ppm',
    'dBm',
    'min',
    'max',
    'kg',
    'Methane',
    'docs',
    'operations',
    'md',
  ].map((w) => w.toLowerCase()),
);

/** Attributes whose value a person reads (or hears from a screen reader). */
const READ_ATTRIBUTES = /\s(?:aria-label|placeholder|title|alt|data-label)="([^"]*)"/g;

/** Words (2+ letters) in visible text; placeholders ( ) never count. */
export function wordsOf(text: string): string[] {
  return (text.match(/\p{L}[\p{L}'’-]*\p{L}/gu) ?? []).filter((w) => !ALLOWED.has(w.toLowerCase()));
}

/**
 * The words a person would read in an HTML fragment: text between tags and read attributes;
 * not tag names, other attributes, `<code>`, elements marked `lang="en"` (data in English
 * shown as data, e.g. a validator's message) or `translate="no"` (identifiers).
 */
export function visibleText(html: string): string[] {
  const attrs = [...html.matchAll(READ_ATTRIBUTES)].map((m) => m[1] ?? '');
  const text = html
    .replace(/<script\b[\s\S]*?<\/script>/gi, ' ')
    .replace(/<style\b[\s\S]*?<\/style>/gi, ' ')
    .replace(/<code\b[^>]*>[\s\S]*?<\/code>/gi, ' ')
    .replace(/<(\w+)\b[^>]*\blang="en"[^>]*>[\s\S]*?<\/\1>/gi, ' ')
    // Content marked translate="no" (HTML's own flag): identifiers such as quarantine reason codes.
    .replace(/<(\w+)\b[^>]*\btranslate="no"[^>]*>[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&[#\w]+;/g, ' ');
  return [text, ...attrs];
}

const HTML_TAG =
  /<!doctype|<\/?(?:a|abbr|article|aside|b|body|br|button|caption|code|dd|details|div|dl|dt|em|fieldset|figcaption|figure|footer|form|h[1-6]|head|header|html|i|img|input|label|legend|li|link|main|meta|meter|nav|ol|optgroup|option|output|p|pre|progress|script|section|select|small|span|strong|style|summary|svg|table|tbody|td|textarea|tfoot|th|thead|time|title|tr|ul)(?=[\s>/])/i;

export interface Finding {
  file: string;
  line: number;
  words: string[];
  text: string;
}

/** Untranslated words in the HTML template literals of one TypeScript source. */
export function scanSource(file: string, source: string): Finding[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const out: Finding[] = [];
  const check = (node: ts.Node, literal: string) => {
    // Only HTML: a literal with an HTML element's tag (not a CLI's `<file>`); `${}` parts become
    // a marker that is no word.
    if (!HTML_TAG.test(literal)) return;
    const words = visibleText(literal).flatMap(wordsOf);
    if (words.length > 0)
      out.push({
        file,
        line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1,
        words,
        text: literal.slice(0, 160),
      });
  };
  const visit = (node: ts.Node) => {
    if (ts.isNoSubstitutionTemplateLiteral(node) || ts.isStringLiteral(node))
      check(node, node.text);
    else if (ts.isTemplateExpression(node))
      check(
        node,
        [node.head.text, ...node.templateSpans.map((s) => s.literal.text)].join(' \u0000 '),
      );
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

const ROOT = path.resolve(import.meta.dirname, '..');
const SKIP = new Set(['node_modules', '.git', 'docs', 'dist', 'coverage']);

/** Every TypeScript and browser-script source of the product (tests and fixtures excluded). */
export function productSources(dir = ROOT): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name) || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (p === path.join(ROOT, 'test')) continue;
      out.push(...productSources(p));
    } else if (
      /\.(ts|js)$/.test(e.name) &&
      !/\.test\.ts$/.test(e.name) &&
      !e.name.endsWith('.d.ts')
    )
      out.push(p);
  }
  return out;
}

export const relative = (p: string) => path.relative(ROOT, p);
export const read = (p: string) => readFileSync(p, 'utf8');

/** `{name}` placeholders of a message, sorted. */
export const placeholders = (text: string) =>
  [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

/**
 * Words English uses that Swahili does not: every word of the English catalogue that no Swahili
 * message has, and common English words, so a new untranslated phrase is caught even when none
 * of its words is in the catalogue yet.
 */
export function englishOnlyWords(): Set<string> {
  const sw = new Set(
    parts
      // A {placeholder} is not a word of the message ("bado wazi: {open}").
      .flatMap((p) =>
        Object.values(p.sw as Record<string, string>).flatMap((v) =>
          wordsOf(v.replace(/\{\w+\}/g, ' ')),
        ),
      )
      .map((w) => w.toLowerCase()),
  );
  const en = parts.flatMap((p) => Object.values(p.en as Record<string, string>).flatMap(wordsOf));
  const common =
    'the and of to in is are was for on with by at from or not no none this that these it its you your be has have had will can may must all any each every new old last next open close closed opened show shows page more less than when what why who which there here yes ok add edit save delete remove cancel back home settings sign'.split(
      ' ',
    );
  return new Set(
    [...en, ...common].map((w) => w.toLowerCase()).filter((w) => !sw.has(w) && !ALLOWED.has(w)),
  );
}

/**
 * English prose in a browser script's string literals ('Acknowledged by ', 'no data in range'):
 * two words, or a word and the space before the next part; not selectors, paths or keys.
 */
export function scanScript(file: string, source: string, english: Set<string>): Finding[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const out: Finding[] = [];
  const prose = (t: string) =>
    /\p{L}{2,}\s+\p{L}{2,}|\p{L}{2,}\s+$|^\s+\p{L}{2,}/u.test(t) && !/[[\]#=/]/.test(t);
  const visit = (node: ts.Node) => {
    // A directive prologue ('use strict') is for the engine, not the reader.
    const directive =
      ts.isStringLiteral(node) &&
      node.text === 'use strict' &&
      (node.parent as ts.Node | undefined)?.kind === ts.SyntaxKind.ExpressionStatement;
    const texts =
      (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && !directive
        ? [node.text]
        : ts.isTemplateExpression(node)
          ? [node.head.text, ...node.templateSpans.map((s) => s.literal.text)]
          : [];
    for (const text of texts.filter(prose)) {
      const words = wordsOf(text).filter((w) => english.has(w.toLowerCase()));
      if (words.length > 0)
        out.push({
          file,
          line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1,
          words,
          text,
        });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}
