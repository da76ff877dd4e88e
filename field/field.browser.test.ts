/// <reference lib="dom" />
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../api/dev-cert.ts';
import { scopedServices } from '../api/scoped-services.ts';
import { createAlertService } from '../dashboards/alert-service.ts';
import { createDashboardQueries } from '../dashboards/dashboard-repo.ts';
import { dashboardRoutes } from '../dashboards/dashboard-routes.ts';
import { createLiveHub } from '../dashboards/live-hub.ts';
import { dashboardPages } from '../dashboards/page-routes.ts';
import { timeseriesInfo } from '../db/timeseries.ts';
import {
  createApiHarness,
  createUserWithPassword,
  systemActor,
  type ApiHarness,
} from '../test/api-harness.ts';
import { createTestDatabase, testLogger } from '../test/db.ts';
import { digesterFeedSection, FIELD_SCRIPT, fieldPages } from './field-page-routes.ts';
import { fieldRoutes } from './field-routes.ts';
import { fieldServiceMaker } from './index.ts';
import { axeSerious } from '../test/page-checks.ts';

/**
 * The field work in Debian's Chromium on a 360 px phone (issue 19): a kitchen manager records a
 * feeding and sees it on the digester's chart; a collector marks the fullest bin collected and
 * it leaves the top of the needs-collection list. Each page: no horizontal overflow, no CSP or
 * script error, no serious or critical axe-core violation (as dashboards/ui.browser.test.ts).
 */
const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM) && process.env.CI === 'true')
  throw new Error(`${CHROMIUM} is required in CI (apt-get install chromium) but is not installed`);
const PASSWORD = 'correct horse battery staple';
const PHONE = { width: 360, height: 740 };
const TZ = 'Africa/Nairobi';

let h: ApiHarness;
let browser: Browser;
let base: string;
const ids = { digester: '', full: '', half: '' };

beforeAll(async () => {
  const t = await createTestDatabase();
  const queries = createDashboardQueries({ mode: (await timeseriesInfo(t.database.pool)).mode });
  const hub = createLiveHub({ flushMs: 50 });
  h = await createApiHarness(
    {
      https: selfSignedCertificate('127.0.0.1', 1),
      routes: ({ audit, db, authenticator }) => {
        const make = fieldServiceMaker({ audit, queries, timeZone: TZ });
        const field = scopedServices(db, make);
        return [
          { plugin: dashboardRoutes({ db, audit, authenticator, queries, hub }) },
          {
            plugin: dashboardPages({
              db,
              queries,
              timeZone: TZ,
              digesterSections: [{ render: digesterFeedSection(make), scripts: [FIELD_SCRIPT] }],
            }),
            root: true,
          },
          { plugin: fieldRoutes({ field, timeZone: TZ }) },
          { plugin: fieldPages({ field, timeZone: TZ }), root: true },
        ];
      },
    },
    { t },
  );
  const owner = h.t.database.pool;
  await createAlertService({ pool: owner, logger: testLogger, notify: false }).ensureDefaults();
  const site = (
    await owner.query<{ id: string }>(
      `INSERT INTO sites (name) VALUES ('Field UI School') RETURNING id`,
    )
  ).rows[0]!.id;
  const unit = async (kind: string, name: string) =>
    (
      await owner.query<{ id: string }>(
        `INSERT INTO units (site_id, kind, name, created_at) VALUES ($1, $2, $3, now() - interval '60 days') RETURNING id`,
        [site, kind, name],
      )
    ).rows[0]!.id;
  ids.digester = await unit('biodigester', 'Shule Digester');
  ids.full = await unit('collection_point', 'Kitchen Door Bin');
  ids.half = await unit('collection_point', 'Playground Bin');
  await owner.query(
    `INSERT INTO devices (id, unit_id, kind, status, online, last_seen_at) VALUES
       ('bd-fui-1', $1, 'biodigester', 'active', true, now()),
       ('cp-fui-1', $2, 'collection_point', 'active', true, now()),
       ('cp-fui-2', $3, 'collection_point', 'active', true, now())`,
    [ids.digester, ids.full, ids.half],
  );
  // A week of gas (3 L/min) and 12 h of fill readings: the door bin at 91 % and rising, the playground bin at 45 %.
  await owner.query(
    `INSERT INTO readings (ts, device_id, unit_id, seq, gas_flow_lpm)
     SELECT date_trunc('hour', now()) - make_interval(hours => g), 'bd-fui-1', $1, 1000 - g, 3 FROM generate_series(1, 24 * 7) g`,
    [ids.digester],
  );
  for (const [device, unitId, top, rate] of [
    ['cp-fui-1', ids.full, 91, 2],
    ['cp-fui-2', ids.half, 45, 1],
  ] as const) {
    await owner.query(
      `INSERT INTO readings (ts, device_id, unit_id, seq, fill_level_pct)
       SELECT now() - make_interval(mins => g * 30), $1, $2, 100 - g, $3::float8 - g * $4::float8 / 2 FROM generate_series(0, 24) g`,
      [device, unitId, top, rate],
    );
    await owner.query(
      `INSERT INTO latest_readings (device_id, metric, unit_id, ts, value) VALUES ($1, 'fill_level_pct', $2, now(), $3)`,
      [device, unitId, top],
    );
  }
  for (const [username, role, units] of [
    ['fui-manager', 'kitchen_manager', [ids.digester]],
    ['fui-collector', 'collector', [ids.full, ids.half]],
  ] as const) {
    const { user } = await createUserWithPassword(h, { username, role, password: PASSWORD });
    await h.users.assignUnits(user.id, [...units], systemActor);
  }
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  base = `https://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 180_000);

afterAll(async () => {
  await browser?.close();
});

async function signIn(
  username: string,
): Promise<{ page: Page; problems: string[]; close: () => Promise<void> }> {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: PHONE,
    timezoneId: 'America/New_York',
    locale: 'en-US',
  });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text()))
      problems.push(m.text());
  });
  page.on('pageerror', (err) => problems.push(String(err)));
  page.on('dialog', (d) => void d.accept());
  await page.goto(`${base}/login`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([
    page.waitForURL((u) => u.pathname !== '/login'),
    page.click('button[type=submit]'),
  ]);
  return { page, problems, close: () => context.close() };
}

async function checkPage(page: Page, problems: string[], label: string): Promise<void> {
  expect(
    await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    ),
    `${label}: horizontal overflow`,
  ).toBeLessThanOrEqual(0);
  expect(await axeSerious(page), `${label}: axe`).toEqual([]);
  expect(problems, `${label}: CSP or script errors`).toEqual([]);
}

describe('field work in Chromium at 360 px (issue 19)', () => {
  it('a kitchen manager records a feeding and sees it on the digester chart', async () => {
    const o = await signIn('fui-manager');
    await o.page.goto(`${base}/digesters/${ids.digester}`);
    await o.page.waitForSelector('#feed-chart canvas');
    await checkPage(o.page, o.problems, 'digester page');
    await o.page.click('a[href$="/feedings"]');
    await o.page.waitForSelector('#feeding-form');
    await checkPage(o.page, o.problems, 'feeding log');
    await o.page.fill('#feeding-form input[name=kg]', '37.5');
    await o.page.fill('#feeding-form input[name=note]', 'ugali and peels');
    await Promise.all([
      o.page.waitForEvent('load'),
      o.page.click('#feeding-form button[type=submit]'),
    ]);
    await expect.poll(() => o.page.locator('#feedings li.feeding').count()).toBe(1);
    expect(await o.page.locator('#feedings').textContent()).toContain('37.5 kg');
    expect(await o.page.locator('#feedings').textContent()).toContain('ugali and peels');
    // On the digester's own page: today's bar is the 37.5 kg just recorded, beside the gas.
    await o.page.goto(`${base}/digesters/${ids.digester}`);
    await o.page.waitForSelector('#feed-chart canvas');
    expect((await o.page.locator('#feed-chart').getAttribute('data-kg'))?.split(',').at(-1)).toBe(
      '37.5',
    );
    expect(await o.page.locator('#feed-chart .u-legend').textContent()).toMatch(
      /Fed \(kg\).*Gas \(m³\)/,
    );
    expect(await o.page.locator('#feed-summary').textContent()).toContain('37.5 kg fed');
    const today = new Intl.DateTimeFormat('en-US', {
      timeZone: TZ,
      weekday: 'short',
      month: 'short',
      day: 'numeric',
    }).format(new Date());
    await o.page.locator('section.feed-gas details summary').click();
    expect(await o.page.locator('#feed-table tbody tr').first().textContent()).toContain(today);
    expect(await o.page.locator('#feed-table tbody tr').first().textContent()).toContain('37.5');
    await checkPage(o.page, o.problems, 'digester page after feeding');
    await o.close();
  }, 240_000);

  it('a collector marks the fullest bin collected and it leaves the top of the needs-collection list', async () => {
    const o = await signIn('fui-collector');
    await o.page.goto(`${base}/collection/due`);
    const top = o.page.locator('#due-list > li').first();
    expect(await top.getAttribute('data-unit')).toBe(ids.full);
    expect(await top.textContent()).toContain('needs collection');
    expect(await top.locator('.forecast').textContent()).toMatch(
      /^Forecast full in \d+ (minutes|hours?)/,
    );
    expect(await o.page.locator('details.method').textContent()).toContain('least-squares');
    await checkPage(o.page, o.problems, 'needs collection');
    await top.locator('details.collect summary').click();
    await top.locator('input[name=weightKg]').fill('48');
    await Promise.all([o.page.waitForEvent('load'), top.locator('button[type=submit]').click()]);
    await expect
      .poll(() => o.page.locator('#due-list > li').first().getAttribute('data-unit'))
      .toBe(ids.half);
    const marked = o.page.locator(`#due-list > li[data-unit="${ids.full}"]`);
    expect(await marked.textContent()).toContain('collected, waiting for a new reading');
    await checkPage(o.page, o.problems, 'needs collection after marking');
    await marked.locator('a[href^="/collection/points/"]').click();
    await o.page.waitForSelector('#collections');
    expect(await o.page.locator('#collections tbody').textContent()).toContain('fui-collector');
    expect(await o.page.locator('#collections tbody').textContent()).toContain('48');
    await checkPage(o.page, o.problems, 'collection history');
    await o.close();
  }, 240_000);
});
