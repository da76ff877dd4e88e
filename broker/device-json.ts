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
 * Duplicates cost one pass over the bytes and one over the parsed value: every member name in
 * the text is followed by a ':' outside a string, so the text holds more ':' than the value has
 * own keys exactly when some object repeats a name. No allocation per member.
 */

export const MAX_JSON_DEPTH = 32;

export type DeviceJsonRefusal = 'MALFORMED_JSON' | 'DUPLICATE_KEY' | 'NESTING_TOO_DEEP';
export type DeviceJson = { ok: true; value: unknown } | { ok: false; code: DeviceJsonRefusal; message: string };

const QUOTE = 0x22, BACKSLASH = 0x5c, COLON = 0x3a, OPEN_OBJECT = 0x7b, CLOSE_OBJECT = 0x7d, OPEN_ARRAY = 0x5b, CLOSE_ARRAY = 0x5d;

/** Member names (':' outside strings) and the deepest nesting, in one pass over the bytes. */
function scan(bytes: Buffer): { names: number; depth: number } {
  let names = 0, depth = 0, deepest = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === BACKSLASH) i++; // the escaped byte (UTF-8 never hides an ASCII byte in a sequence)
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === COLON) names++;
    else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      if (++depth > deepest) deepest = depth;
    } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) depth--;
  }
  return { names, depth: deepest };
}

/** Own keys of every object in a parsed JSON value (its depth is already bounded). */
function countKeys(v: unknown): number {
  if (typeof v !== 'object' || v === null) return 0;
  let n = 0;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) n += countKeys(v[i]);
    return n;
  }
  // for…in sees JSON.parse's own "__proto__" key too; parsed objects inherit nothing enumerable.
  for (const k in v) n += 1 + countKeys((v as Record<string, unknown>)[k]);
  return n;
}

export function parseDeviceJson(bytes: Buffer, maxDepth = MAX_JSON_DEPTH): DeviceJson {
  if (!isUtf8(bytes)) return { ok: false, code: 'MALFORMED_JSON', message: 'is not valid UTF-8 (RFC 8259 §8.1)' };
  const { names, depth } = scan(bytes);
  if (depth > maxDepth) return { ok: false, code: 'NESTING_TOO_DEEP', message: `nests ${depth} levels deep; at most ${maxDepth}` };
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    return { ok: false, code: 'MALFORMED_JSON', message: storableText(err instanceof Error ? err.message : 'not JSON') };
  }
  if (names > 0 && countKeys(value) !== names) return { ok: false, code: 'DUPLICATE_KEY', message: 'an object repeats a member name (RFC 8259 §4); send each name once' };
  return { ok: true, value };
}

const UNSTORABLE = /[\0\ud800-\udfff]/;
const NUL_OR_LONE_SURROGATE = /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

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
