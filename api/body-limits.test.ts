import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApiHarness, createUserWithPassword, type ApiHarness } from '../test/api-harness.ts';
import { deeperThan, MAX_JSON_DEPTH } from './json-guard.ts';

/**
 * Hostile bodies (issue 17 §5): a deeply nested JSON body is refused before it is parsed, bodies
 * are small by default and smaller on the public sign-in routes, and a flood of hostile bodies
 * does not keep a legitimate request from completing.
 */
let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness();
  await createUserWithPassword(h, { username: 'legit', role: 'technician' });
});

const post = (url: string, payload: string, contentType = 'application/json') =>
  h.app.inject({ method: 'POST', url, headers: { 'content-type': contentType }, payload });
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('JSON nesting depth', () => {
  it('refuses a deeply nested body with 400 JSON_TOO_DEEP before parsing, on a public route', async () => {
    const res = await post('/api/v1/auth/login', nested(2000));
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('JSON_TOO_DEEP');
  });

  it('refuses the issue’s 1 MB nested body by size first (413), on any route', async () => {
    for (const url of ['/api/v1/auth/login', '/api/v1/users']) {
      const res = await post(url, nested(512 * 1024));
      expect(res.statusCode, url).toBe(url === '/api/v1/auth/login' ? 413 : 401); // protected routes refuse before reading the body
    }
    const admin = {
      authorization: `Bearer ${await h.tokenFor('admin')}`,
      'content-type': 'application/json',
    };
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: admin,
      payload: nested(512 * 1024),
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().code).toBe('FST_ERR_CTP_BODY_TOO_LARGE');
  });

  it('judges depth by structure only: brackets inside strings and escapes do not count (property)', () => {
    const leaf = fc.oneof(
      fc
        .string({ unit: fc.constantFrom('[', ']', '{', '}', '"', '\\', 'a', ' ') })
        .map((s) => JSON.stringify(s)),
      fc.integer().map(String),
      fc.constant('null'),
    );
    const tree = (depth: number): fc.Arbitrary<string> =>
      depth === 0
        ? leaf
        : fc.oneof(
            leaf,
            fc.array(tree(depth - 1), { maxLength: 3 }).map((xs) => `[${xs.join(',')}]`),
            fc
              .array(tree(depth - 1), { maxLength: 3 })
              .map((xs) => `{${xs.map((x, i) => `"k${i}":${x}`).join(',')}}`),
          );
    const realDepth = (v: unknown): number =>
      v !== null && typeof v === 'object' ? 1 + Math.max(0, ...Object.values(v).map(realDepth)) : 0;
    fc.assert(
      fc.property(tree(6), fc.integer({ min: 0, max: 8 }), (text, limit) => {
        expect(deeperThan(text, limit)).toBe(realDepth(JSON.parse(text)) > limit);
      }),
      { numRuns: 500 },
    );
  });

  it('still parses ordinary bodies and keeps prototype-poisoning protection', async () => {
    const ok = await post(
      '/api/v1/auth/login',
      JSON.stringify({ username: 'legit', password: 'correct horse battery staple' }),
    );
    expect(ok.statusCode).toBe(200);
    const poisoned = await post(
      '/api/v1/auth/login',
      '{"username":"legit","password":"x","__proto__":{"admin":true}}',
    );
    expect(poisoned.statusCode).toBe(400);
    expect(nested(MAX_JSON_DEPTH)).toHaveLength(2 * MAX_JSON_DEPTH);
    expect((await post('/api/v1/auth/login', nested(MAX_JSON_DEPTH))).json().code).toBe(
      'VALIDATION_FAILED',
    ); // parsed, then refused by the schema
  });

  it('caps the sign-in body at 4 KiB', async () => {
    const res = await post(
      '/api/v1/auth/login',
      JSON.stringify({ username: 'legit', password: 'x'.repeat(5000) }),
    );
    expect(res.statusCode).toBe(413);
    const form = await post(
      '/login',
      `username=legit&password=${'x'.repeat(5000)}`,
      'application/x-www-form-urlencoded',
    );
    expect(form.statusCode).toBe(413);
  });
});

describe('hostile bodies in parallel', () => {
  it('a legitimate sign-in completes while many hostile bodies are being sent', async () => {
    // Under the sign-in route's 4 KiB, so each one reaches the depth check.
    const hostile = Array.from({ length: 40 }, (_, i) =>
      post('/api/v1/auth/login', i % 2 ? nested(1500) : `{"a":${nested(1500)}}`),
    );
    const legit = post(
      '/api/v1/auth/login',
      JSON.stringify({ username: 'legit', password: 'correct horse battery staple' }),
    );
    const [mine, ...bad] = await Promise.all([legit, ...hostile]);
    expect(mine.statusCode).toBe(200);
    expect(new Set(bad.map((r) => `${r.statusCode} ${r.json().code}`))).toEqual(
      new Set(['400 JSON_TOO_DEEP']),
    );
  });
});
