import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  contextWords,
  MAX_PASSWORD_LENGTH,
  MIN_PASSWORD_LENGTH,
  passwordProblem,
} from './password-policy.ts';

/** NIST SP 800-63B-4 §3.1.1.2, as an attacker choosing an easy password would try it. */
describe('password policy', () => {
  it('refuses the password of the issue and its kind: repeats, sequences, keyboard walks, common and breached passwords', async () => {
    for (const p of [
      'aaaaaaaaaaaa',
      'aaaaaaaaaaaaaaaaaaaa',
      'abcabcabcabcabcabc',
      'abcdefghijklmnopq',
      '123456789012345678',
      'qwertyuiopasdfghjkl',
      '1qaz2wsx3edc4rfv5tgb',
      'passwordpassword',
      'password12345678',
      'iloveyouiloveyou',
      'Password1234567!',
      'letmeinletmein123',
    ]) {
      expect(await passwordProblem(p), p).toBeDefined();
    }
  });

  it('refuses any single character repeated, at any accepted length (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
        fc.integer({ min: MIN_PASSWORD_LENGTH, max: 80 }),
        async (c, n) => {
          expect(await passwordProblem(c.repeat(n))).toBeDefined();
        },
      ),
      { numRuns: 40 },
    );
  });

  it('refuses a short run repeated to length, and runs of consecutive characters (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({
          unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'),
          minLength: 1,
          maxLength: 3,
        }),
        async (unit) => {
          expect(await passwordProblem(unit.repeat(Math.ceil(20 / unit.length)))).toBeDefined();
        },
      ),
      { numRuns: 40 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0x30, max: 0x60 }),
        fc.integer({ min: MIN_PASSWORD_LENGTH, max: 30 }),
        async (start, n) => {
          const run = Array.from({ length: n }, (_, i) => String.fromCharCode(start + i)).join('');
          expect(await passwordProblem(run), run).toBeDefined();
        },
      ),
      { numRuns: 30 },
    );
  });

  it('refuses context words: the product, the roles, the user’s own name and e-mail', async () => {
    expect(await passwordProblem('thamani2024thamani')).toBeDefined();
    expect(await passwordProblem('ThamaniIoT-admin1')).toBeDefined();
    const words = contextWords({
      username: 'wanjiku.k',
      displayName: 'Wanjiku Kamau',
      email: 'wkamau@example.co.ke',
    });
    expect(words).toEqual(expect.arrayContaining(['wanjiku.k', 'wanjiku', 'kamau', 'wkamau']));
    expect(await passwordProblem('WanjikuKamau1990!', words)).toBeDefined();
    expect(await passwordProblem('WanjikuKamau1990!')).toBeUndefined(); // the same is fine for someone else
  });

  it('has a minimum length of 15 and allows at least 64 (up to 256), with no composition rules', async () => {
    expect(await passwordProblem('Zq7#mVp2$wR9')).toMatch(/at least 15/); // 12 random characters: too short
    expect(await passwordProblem('correct horse battery staple')).toBeUndefined(); // only lower case and spaces
    expect(await passwordProblem('mango tamarind kettle drizzle')).toBeUndefined();
    expect(await passwordProblem('🐘 ndovu anakula majani mabichi')).toBeUndefined(); // any Unicode
    const long = 'the rain in nakuru falls mainly on the red tin roofs of the market stalls';
    expect(long.length).toBeGreaterThan(64);
    expect(await passwordProblem(long)).toBeUndefined();
    expect(await passwordProblem('x'.repeat(MAX_PASSWORD_LENGTH + 1))).toMatch(/at most 256/);
  });
});
