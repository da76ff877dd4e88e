import { describe, expect, it } from 'vitest';
import { hashPassword, needsRehash, OWASP_SCRYPT, verifyPassword } from './password-fns.ts';

const cheap = { ln: 10, r: 8, p: 1 };

describe('password hashing', () => {
  it('salts every hash and verifies only the right password', async () => {
    const a = await hashPassword('correct horse battery', cheap);
    const b = await hashPassword('correct horse battery', cheap);
    expect(a).not.toBe(b);
    expect(await verifyPassword('correct horse battery', a)).toBe(true);
    expect(await verifyPassword('correct horse batterz', a)).toBe(false);
    expect(await verifyPassword('anything', 'not-a-hash')).toBe(false);
  });

  it('stores its parameters so weaker hashes are upgraded at sign-in', async () => {
    const weak = await hashPassword('correct horse battery', cheap);
    expect(needsRehash(weak, OWASP_SCRYPT)).toBe(true);
    expect(needsRehash(weak, cheap)).toBe(false);
    expect(OWASP_SCRYPT).toEqual({ ln: 17, r: 8, p: 1 });
  });
});
