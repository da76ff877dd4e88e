import type { ZxcvbnFactory } from '@zxcvbn-ts/core';

/**
 * Which passwords are accepted, after NIST SP 800-63B-4 §3.1.1.2:
 * - at least 15 characters (code points, after NFKC): every account here signs in with a password
 *   alone, and 800-63B-4 asks 15 of a single-factor password (8 only when part of MFA);
 * - at most 256 (it asks that at least 64 be allowed); spaces and any Unicode allowed;
 * - no composition rules (no "one digit, one symbol");
 * - refused when it is, or is built from, a common or breached password, a dictionary word,
 *   repetitions ("aaaa"), sequences ("abcd", "1234"), keyboard walks ("qwerty"), dates, or
 *   context words (the product, the roles, the user's own name and e-mail).
 * The last check is zxcvbn-ts (@zxcvbn-ts/core, MIT, maintained): it ships its lists in the
 * package (language-common: ~30k passwords from breach corpora, keyboard graphs; language-en:
 * English words and names), nothing is fetched at run time, and unlike a plain list lookup it
 * also catches `aaaaaaaaaaaaaaa` and `thamani2024thamani`. A password passes when zxcvbn
 * estimates at least 10^10 guesses (its score 4) for it (docs/decisions/0005-password-policy.md).
 */
export const MIN_PASSWORD_LENGTH = 15;
export const MAX_PASSWORD_LENGTH = 256;
const MIN_GUESSES_LOG10 = 10;
/** zxcvbn's cost grows faster than linear; past 64 characters a password has length enough. */
const EVALUATED_CHARS = 64;

/** Words anyone guessing a password here would try first. */
const CONTEXT_WORDS = [
  'thamani',
  'thamani iot',
  'thamaniiot',
  'iot',
  'biogas',
  'biodigester',
  'digester',
  'kitchen',
  'collector',
  'technician',
  'auditor',
  'admin',
  'administrator',
  'operator',
  'waste',
  'energy',
  'kenya',
];

let factory: Promise<ZxcvbnFactory> | undefined;
/**
 * Loaded and built on first use (~0.5 s to import the lists, ~0.2 s to unpack them), not at
 * start-up: every CLI command and the gateway's start would pay it otherwise.
 */
function zxcvbn(): Promise<ZxcvbnFactory> {
  factory ??= (async () => {
    const [{ ZxcvbnFactory: Factory }, common, en] = await Promise.all([
      import('@zxcvbn-ts/core'),
      import('@zxcvbn-ts/language-common'),
      import('@zxcvbn-ts/language-en'),
    ]);
    return new Factory({
      dictionary: { ...common.dictionary, ...en.dictionary },
      graphs: common.adjacencyGraphs,
      translations: en.translations,
      maxLength: EVALUATED_CHARS,
    });
  })();
  return factory;
}

/** The user's own details as words: username, each part of the display name, the e-mail's parts. */
export function contextWords(user: {
  username?: string | null | undefined;
  displayName?: string | null | undefined;
  email?: string | null | undefined;
}): string[] {
  const words = [
    user.username,
    ...(user.displayName ?? '').split(/[\s._-]+/),
    ...(user.email ?? '').split(/[@.+_-]+/),
  ];
  return [
    ...new Set(
      words
        .filter((w): w is string => typeof w === 'string' && w.length >= 3)
        .map((w) => w.toLowerCase()),
    ),
  ];
}

/** Why a new password is refused, or undefined when it is acceptable. */
export async function passwordProblem(
  password: string,
  userWords: readonly string[] = [],
): Promise<string | undefined> {
  const normalised = password.normalize('NFKC');
  const length = [...normalised].length;
  if (length < MIN_PASSWORD_LENGTH)
    return `must be at least ${MIN_PASSWORD_LENGTH} characters (a few unrelated words make a good one)`;
  if (length > MAX_PASSWORD_LENGTH) return `must be at most ${MAX_PASSWORD_LENGTH} characters`;
  // Repetition by code point, whatever the script (zxcvbn's matchers see UTF-16 units and ASCII
  // patterns best): a unit repeated ('ndovundovundovu', '🐘🐘🐘…') or a handful of characters.
  if (new Set(normalised).size < 5)
    return 'is too easy to guess: it uses fewer than 5 different characters';
  if (/^(.+?)\1+$/su.test(normalised))
    return 'is too easy to guess: it repeats the same few characters';
  const result = (await zxcvbn()).check(normalised.slice(0, EVALUATED_CHARS * 2), [
    ...CONTEXT_WORDS,
    ...userWords,
  ]);
  if (result.guessesLog10 < MIN_GUESSES_LOG10) {
    const why = result.feedback.warning ?? 'it is too easy to guess';
    return `is too easy to guess: ${why.replace(/\.$/, '')}. Avoid common passwords, repeated or sequential characters, keyboard patterns, and your name or this product's`;
  }
  return undefined;
}
