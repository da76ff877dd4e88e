import { isUtf8 } from 'node:buffer';

/**
 * JSON from a device, read totally: every byte string ends in a value or in one refusal code,
 * never in an exception. `JSON.parse` alone is not enough for input nobody here wrote:
 * - it decodes invalid UTF-8 into U+FFFD without a word; JSON text MUST be UTF-8 [RFC 8259 §8.1];
 * - it keeps the last of duplicate member names, so `{"ph":7,"ph":9}` would store a value the
 *   device may not have meant; names SHOULD be unique [RFC 8259 §4] and we refuse rather than
 *   guess which one the device meant;
 * - depth is only bounded by the payload size; nothing of the contract nests deeper than four
 *   levels, so a generous bound costs no device anything and keeps every walk over the value
 *   (including our own) shallow.
 *
 * Duplicates cost a native count of ':' in the text and one walk over the parsed value: every
 * member name is followed by a ':' outside a string, so the text holds more ':' than the value
 * has own keys (plus the ':' inside its strings) exactly when some object repeats a name. No
 * allocation per member; the string-aware scan runs only for text with a backslash.
 */

export const MAX_JSON_DEPTH = 32;

export type DeviceJsonRefusal = 'MALFORMED_JSON' | 'DUPLICATE_KEY' | 'NESTING_TOO_DEEP';
export type DeviceJson =
  { ok: true; value: unknown } | { ok: false; code: DeviceJsonRefusal; message: string };

const QUOTE = 0x22,
  BACKSLASH = 0x5c,
  COLON = 0x3a;

/**
 * Member names (':' outside strings) of JSON text, string-aware: a string is skipped with the
 * native indexOf; a quote preceded by an odd number of backslashes is escaped. For text that
 * JSON.parse accepted.
 */
function scan(text: string): number {
  let names = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      for (;;) {
        const q = text.indexOf('"', i + 1);
        let k = q - 1;
        while (text.charCodeAt(k) === BACKSLASH) k--;
        i = q;
        if ((q - 1 - k) % 2 === 0) break;
      }
    } else if (c === COLON) names++;
  }
  return names;
}

/** Thrown (and caught below) by `tally` past the depth bound: only on hostile input. */
class TooDeep extends Error {}

function colons(s: string): number {
  let n = 0;
  for (let i = s.indexOf(':'); i >= 0; i = s.indexOf(':', i + 1)) n++;
  return n;
}

/** What `tally` adds besides the keys: nothing, the ':' in string values, or in keys too. */
const KEYS = 0,
  VALUE_COLONS = 1,
  ALL_COLONS = 2;

/**
 * Own keys of every object in a parsed JSON value, plus the ':' inside its strings as `mode`
 * says. Recursion is bounded by `maxDepth` (JSON.parse itself does not recurse).
 */
function tally(v: unknown, depth: number, maxDepth: number, mode: number): number {
  if (typeof v === 'string') return mode === KEYS ? 0 : colons(v);
  if (typeof v !== 'object' || v === null) return 0;
  if (depth >= maxDepth) throw new TooDeep();
  let n = 0;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) n += tally(v[i], depth + 1, maxDepth, mode);
    return n;
  }
  // for…in sees JSON.parse's own "__proto__" key too; parsed objects inherit nothing enumerable.
  for (const k in v)
    n +=
      1 +
      (mode === ALL_COLONS ? colons(k) : 0) +
      tally((v as Record<string, unknown>)[k], depth + 1, maxDepth, mode);
  return n;
}

/**
 * Whether some object of the text repeats a member name. Text with a backslash (an escape may
 * write ':' as \u003a) is scanned string-aware. Otherwise every string is in the value as
 * written, so the text's ':' are its member names plus the ':' inside the value's keys and
 * string values, and more than that exactly when a name repeats (a repeat only adds ':'). The
 * usual payload has no ':' in a key, so string values are counted first and keys only if that
 * does not already account for every ':'.
 */
function repeatsName(text: string, value: unknown, maxDepth: number): boolean {
  if (text.includes('\\')) return scan(text) !== tally(value, 0, maxDepth, KEYS);
  const inText = colons(text);
  return (
    inText !== tally(value, 0, maxDepth, VALUE_COLONS) &&
    inText !== tally(value, 0, maxDepth, ALL_COLONS)
  );
}

export function parseDeviceJson(bytes: Buffer, maxDepth = MAX_JSON_DEPTH): DeviceJson {
  const text = bytes.toString('utf8');
  // The decoder turns every invalid sequence into U+FFFD: only then is the check worth its call.
  if (text.includes('\ufffd') && !isUtf8(bytes))
    return { ok: false, code: 'MALFORMED_JSON', message: 'is not valid UTF-8 (RFC 8259 §8.1)' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return {
      ok: false,
      code: 'MALFORMED_JSON',
      message: storableText(err instanceof Error ? err.message : 'not JSON'),
    };
  }
  try {
    if (repeatsName(text, value, maxDepth))
      return {
        ok: false,
        code: 'DUPLICATE_KEY',
        message: 'an object repeats a member name (RFC 8259 §4); send each name once',
      };
  } catch (err) {
    if (!(err instanceof TooDeep)) throw err;
    return {
      ok: false,
      code: 'NESTING_TOO_DEEP',
      message: `nests more than ${maxDepth} levels deep`,
    };
  }
  return { ok: true, value };
}

const UNSTORABLE = /[\0\ud800-\udfff]/;
const NUL_OR_LONE_SURROGATE =
  /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Whether PostgreSQL stores this text as it is (text and jsonb): no U+0000, no lone surrogate. */
export function isStorableText(s: string): boolean {
  if (!UNSTORABLE.test(s)) return true;
  NUL_OR_LONE_SURROGATE.lastIndex = 0;
  return !NUL_OR_LONE_SURROGATE.test(s);
}

/**
 * Device text made safe to store and to send back: PostgreSQL refuses U+0000 in text and jsonb,
 * and jsonb a lone surrogate (which JSON's \ud800 escapes can produce); both become U+FFFD. Long
 * text (a 100 kB metric name) is cut, so that a reason stays a reason.
 */
export function storableText(s: string, max = 200): string {
  const cut = s.length > max ? `${s.slice(0, max)}…` : s;
  return UNSTORABLE.test(cut) ? cut.replace(NUL_OR_LONE_SURROGATE, '\ufffd') : cut;
}
