import { beforeAll, describe, expect, it } from 'vitest';
import { createApiHarness, createUserWithPassword, type ApiHarness } from '../test/api-harness.ts';
import { crossSiteProblem } from './origin-guard.ts';

/**
 * Login CSRF and cross-site requests (issue 17 §2), header by header, through the real app; the
 * browser test (auth/login-csrf.browser.test.ts) does it with a real cross-site form.
 */
let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness();
  await createUserWithPassword(h, { username: 'mallory', role: 'collector' });
});

const form = (headers: Record<string, string>) =>
  h.app.inject({
    method: 'POST',
    url: '/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    payload: 'username=mallory&password=correct+horse+battery+staple',
    remoteAddress: '203.0.113.9',
  });

describe('POST /login from another site', () => {
  const refused: [string, Record<string, string>][] = [
    ['a foreign Origin', { origin: 'https://evil.example' }],
    [
      'a foreign Origin with our host name in it',
      { origin: 'https://localhost:8443.evil.example' },
    ],
    ['our host on another port', { origin: 'https://localhost:9443' }],
    ['our host over http', { origin: 'http://localhost:8443' }],
    ['Origin: null without fetch metadata', { origin: 'null' }],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }],
    ['Sec-Fetch-Site: none', { 'sec-fetch-site': 'none' }],
    [
      'Sec-Fetch-Site: cross-site with our Origin',
      { 'sec-fetch-site': 'cross-site', origin: 'https://localhost:8443' },
    ],
    [
      'Sec-Fetch-Site: same-origin with a foreign Origin',
      { 'sec-fetch-site': 'same-origin', origin: 'https://evil.example' },
    ],
  ];
  for (const [what, headers] of refused) {
    it(`is refused with 403 CROSS_SITE_REQUEST: ${what}`, async () => {
      const res = await form(headers);
      expect(res.statusCode).toBe(403);
      expect(res.json().code).toBe('CROSS_SITE_REQUEST');
      expect(res.headers['set-cookie']).toBeUndefined();
    });
  }

  const admitted: [string, Record<string, string>][] = [
    ['our public origin', { origin: 'https://localhost:8443' }],
    [
      'the origin of the Host it was sent to',
      { origin: 'https://gw.example:8443', host: 'gw.example:8443' },
    ],
    [
      'Sec-Fetch-Site: same-origin with Origin: null (our pages send no referrer)',
      { 'sec-fetch-site': 'same-origin', origin: 'null' },
    ],
    ['a client that is not a browser (neither header)', {}],
  ];
  for (const [what, headers] of admitted) {
    it(`signs in: ${what}`, async () => {
      const res = await form(headers);
      expect([res.statusCode, res.headers.location]).toEqual([303, '/']);
    });
  }
});

describe('refused requests are security events, aggregated', () => {
  it('records one entry per (reason, address) and window, with the count of the rest', async () => {
    const refusedFrom = (ip: string) =>
      h.app.inject({
        method: 'POST',
        url: '/api/v1/users',
        headers: { origin: 'https://evil.example' },
        payload: {},
        remoteAddress: ip,
      });
    await Promise.all(Array.from({ length: 6 }, () => refusedFrom('198.51.100.66')));
    const entries = async () =>
      (
        await h.t.database.pool.query<{
          action: string;
          ip: string;
          after: { reason: string; suppressedBefore: number };
        }>(
          `SELECT action, m.ip, after FROM audit_log l JOIN audit_request_meta m ON m.audit_id = l.id WHERE action = 'security.http_forbidden' AND m.ip = '198.51.100.66' ORDER BY id`,
        )
      ).rows;
    await expect.poll(async () => (await entries()).length, { timeout: 30_000 }).toBe(1);
    expect((await entries())[0]!.after.reason).toBe('CROSS_SITE_REQUEST');
    h.clock.advance(61_000);
    await refusedFrom('198.51.100.66');
    await expect.poll(async () => (await entries()).length, { timeout: 30_000 }).toBe(2);
    expect((await entries())[1]!.after.suppressedBefore).toBe(5);
    // The address is beside the signed entries (pruned, erasable), never in them: not even as actor id.
    expect(
      (
        await h.t.database.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM audit_log l WHERE l::text LIKE '%198.51.100.66%'`,
        )
      ).rows[0]!.n,
    ).toBe(0);
  });

  it('records a role refused by the permission matrix and a cookie request without its CSRF token', async () => {
    const collector = await h.tokenFor('collector');
    expect(
      (
        await h.app.inject({
          method: 'GET',
          url: '/api/v1/users',
          headers: { authorization: `Bearer ${collector}` },
          remoteAddress: '198.51.100.67',
        })
      ).statusCode,
    ).toBe(403);
    const login = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: 'mallory', password: 'correct horse battery staple' },
    });
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    expect(
      (
        await h.app.inject({
          method: 'POST',
          url: '/api/v1/auth/logout',
          headers: { cookie },
          remoteAddress: '198.51.100.68',
        })
      ).json().code,
    ).toBe('CSRF_FAILED');
    const reasons = async () =>
      (
        await h.t.database.pool.query<{ ip: string; reason: string; actor_role: string }>(
          `SELECT m.ip, after->>'reason' AS reason, actor_role FROM audit_log l JOIN audit_request_meta m ON m.audit_id = l.id WHERE action LIKE 'security.http_%' AND m.ip IN ('198.51.100.67', '198.51.100.68') ORDER BY m.ip`,
        )
      ).rows;
    await expect.poll(async () => (await reasons()).length, { timeout: 30_000 }).toBe(2);
    expect(await reasons()).toEqual([
      { ip: '198.51.100.67', reason: 'FORBIDDEN', actor_role: 'collector' },
      { ip: '198.51.100.68', reason: 'CSRF_FAILED', actor_role: 'anonymous' },
    ]);
  });
});

describe('crossSiteProblem (pure)', () => {
  it('never refuses a safe method, whatever the headers', () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS'])
      expect(
        crossSiteProblem(
          method,
          { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
          new Set(),
        ),
      ).toBeUndefined();
  });
});
