/// <reference lib="dom" />
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { selfSignedCertificate } from '../api/dev-cert.ts';
import type { Role } from '../auth/permissions.ts';
import { createDashboardQueries } from '../dashboards/dashboard-repo.ts';
import { dashboardRoutes } from '../dashboards/dashboard-routes.ts';
import { exportRoutes } from '../dashboards/export-routes.ts';
import { createLiveHub } from '../dashboards/live-hub.ts';
import { dashboardPages } from '../dashboards/page-routes.ts';
import { timeseriesInfo } from '../db/timeseries.ts';
import {
  createApiHarness,
  createUserWithPassword,
  systemActor,
  type ApiHarness,
} from './api-harness.ts';
import { createTestDatabase } from './db.ts';
import { seedFleet } from './seed-fleet.ts';

/**
 * The screenshots in docs/img and the README: the seeded fleet (test/seed-fleet.ts) as each
 * role sees it, at 360 px and 1366 px, in English (the browser's language) and in Swahili
 * (chosen in the header, as a user would). Run with `npm run docs:screenshots`.
 */

const OUT = path.resolve(import.meta.dirname, '..', 'docs', 'img');
const PASSWORD = 'correct horse battery staple';
const PHONE = { width: 360, height: 740 };
const DESKTOP = { width: 1366, height: 900 };

let h: ApiHarness;
let browser: Browser;
let base: string;
let ids: Awaited<ReturnType<typeof seedFleet>>;

beforeAll(async () => {
  const t = await createTestDatabase();
  const queries = createDashboardQueries({ mode: (await timeseriesInfo(t.database.pool)).mode });
  const hub = createLiveHub();
  h = await createApiHarness(
    {
      https: selfSignedCertificate('127.0.0.1', 1),
      routes: ({ audit, db, authenticator }) => [
        { plugin: dashboardRoutes({ db, audit, authenticator, queries, hub }) },
        { plugin: exportRoutes({ db, queries }) },
        { plugin: dashboardPages({ db, queries }), root: true },
      ],
    },
    { t },
  );
  ids = await seedFleet(t.database.pool);
  for (const [username, role] of [
    ['wanjiru', 'kitchen_manager'],
    ['otieno', 'technician'],
    ['zawadi', 'collector'],
  ] as const) {
    const { user } = await createUserWithPassword(h, { username, role, password: PASSWORD });
    await h.users.update(
      user.id,
      { displayName: username[0]!.toUpperCase() + username.slice(1) },
      systemActor,
    );
    if (role === 'kitchen_manager') await h.users.assignUnits(user.id, [ids.digester], systemActor);
    if (role === 'collector') await h.users.assignUnits(user.id, [ids.bin], systemActor);
  }
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  base = `https://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  mkdirSync(OUT, { recursive: true });
}, 300_000);

afterAll(async () => {
  await browser?.close();
});

async function signIn(username: string, size: typeof PHONE, locale = 'en-US'): Promise<Page> {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: size,
    locale,
    timezoneId: 'Africa/Nairobi',
  });
  const page = await context.newPage();
  await page.goto(`${base}/login`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([
    page.waitForURL((u) => u.pathname !== '/login'),
    page.click('button[type=submit]'),
  ]);
  return page;
}

/** Chooses a language in the header, as a user does; the page reloads in it. */
async function choose(page: Page, language: 'en' | 'sw' | 'browser') {
  await page.selectOption('form[data-language] select', language);
  await Promise.all([page.waitForEvent('load'), page.click('form[data-language] button')]);
}

async function shot(page: Page, url: string, name: string, lang: 'en' | 'sw') {
  await page.goto(`${base}${url}`);
  await expect.poll(() => page.getAttribute('html', 'lang')).toBe(lang);
  if (url.startsWith('/digesters/')) await page.waitForSelector('#chart canvas');
  await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: false });
}

const users: Record<Exclude<Role, 'admin' | 'auditor'>, string> = {
  kitchen_manager: 'wanjiru',
  technician: 'otieno',
  collector: 'zawadi',
};

it('captures each role’s pages at 360 px and on a desktop, in English and in Swahili', async () => {
  const digester = ids.digester;
  for (const lang of ['en', 'sw'] as const) {
    const suffix = lang === 'en' ? '' : '-sw';
    for (const [size, tag] of [
      [PHONE, '360'],
      [DESKTOP, 'desktop'],
    ] as const) {
      const km = await signIn(users.kitchen_manager, size);
      if (lang === 'sw') await choose(km, 'sw');
      await shot(km, `/digesters/${digester}`, `digester-${tag}${suffix}`, lang);
      await km.context().close();
    }
    const tech = await signIn(users.technician, PHONE);
    if (lang === 'sw') await choose(tech, 'sw');
    await shot(tech, '/fleet', `fleet-360${suffix}`, lang);
    await shot(tech, '/alerts', `alerts-360${suffix}`, lang);
    await tech.context().close();
    const collector = await signIn(users.collector, PHONE);
    if (lang === 'sw') await choose(collector, 'sw');
    await shot(collector, '/collection', `collection-360${suffix}`, lang);
    await collector.context().close();
  }
  // Before sign-in the browser's language decides.
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: PHONE,
    locale: 'sw-KE',
  });
  const page = await context.newPage();
  await shot(page, '/login', 'login-360-sw', 'sw');
  await context.close();
});
