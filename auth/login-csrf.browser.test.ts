import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../api/dev-cert.ts';
import { createApiHarness, createUserWithPassword, type ApiHarness } from '../test/api-harness.ts';

/**
 * Login CSRF in a real browser (Debian's Chromium): an admin is signed in; a page on another
 * origin auto-submits a form to /login with the attacker's credentials. Before the Origin and
 * Fetch Metadata check, the response's Set-Cookie replaced the admin's session with the
 * attacker's account (issue 17 §2). The admin's session must stay.
 */
const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM) && process.env.CI === 'true')
  throw new Error(`${CHROMIUM} is required in CI (apt-get install chromium) but is not installed`);
const PASSWORD = 'correct horse battery staple';

let h: ApiHarness;
let browser: Browser;
let apiUrl: string;
let attackerUrl: string;
let attacker: http.Server;

beforeAll(async () => {
  h = await createApiHarness({ https: selfSignedCertificate('127.0.0.1', 1) });
  await createUserWithPassword(h, { username: 'boss', role: 'admin', password: PASSWORD });
  await createUserWithPassword(h, {
    username: 'mallory',
    role: 'collector',
    password: 'mallory owns this account',
  });
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  apiUrl = `https://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  // The attacker's site: another origin (other host name, other scheme, other port).
  attacker = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(
      `<!doctype html><form method="post" action="${apiUrl}/login"><input name="username" value="mallory"><input name="password" value="mallory owns this account"></form><script>document.forms[0].submit()</script>`,
    );
  });
  await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
  attackerUrl = `http://localhost:${(attacker.address() as AddressInfo).port}/`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => attacker?.close(resolve));
});

describe('login CSRF in a real browser', () => {
  it('a cross-site form posting to /login is refused and the signed-in admin stays signed in', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(`${apiUrl}/login`);
    await page.fill('input[name=username]', 'boss');
    await page.fill('input[name=password]', PASSWORD);
    await Promise.all([
      page.waitForURL((u) => u.pathname !== '/login'),
      page.click('button[type=submit]'),
    ]);
    const whoAmI = async () =>
      (await context.request.get(`${apiUrl}/api/v1/auth/session`)).json() as Promise<{
        displayName: string;
        role: string;
      }>;
    expect(await whoAmI()).toMatchObject({ displayName: 'boss', role: 'admin' });

    const evil = await context.newPage();
    const [answer] = await Promise.all([
      evil.waitForResponse((r) => r.url() === `${apiUrl}/login` && r.request().method() === 'POST'),
      evil.goto(attackerUrl),
    ]);
    expect(answer.status()).toBe(403);
    // A browser's navigation is answered with a page (api/error-handler.ts) naming the refusal.
    expect(answer.headers()['content-type']).toMatch(/^text\/html/);
    expect(await answer.text()).toContain('<code>CROSS_SITE_REQUEST</code>');
    expect(await whoAmI()).toMatchObject({ displayName: 'boss', role: 'admin' });
    const { rows } = await h.t.database.pool.query(
      `SELECT count(*)::int AS n FROM audit_log WHERE action = 'auth.login' AND actor_id = (SELECT id::text FROM users WHERE username = 'mallory')`,
    );
    expect(rows[0].n).toBe(0);

    // The admin's own form still works from our origin (Chromium sends Sec-Fetch-Site: same-origin).
    await page.goto(`${apiUrl}/login`);
    await page.fill('input[name=username]', 'boss');
    await page.fill('input[name=password]', PASSWORD);
    const [own] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${apiUrl}/login` && r.request().method() === 'POST'),
      page.click('button[type=submit]'),
    ]);
    expect(own.status()).toBe(303);
    await context.close();
  });
});
