/// <reference lib="dom" />
import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../api/dev-cert.ts';
import type { Role } from '../auth/permissions.ts';
import { timeseriesInfo } from '../db/timeseries.ts';
import {
  createApiHarness,
  createUserWithPassword,
  systemActor,
  type ApiHarness,
} from '../test/api-harness.ts';
import { createTestDatabase, testLogger } from '../test/db.ts';
import { createAlertService } from './alert-service.ts';
import { createDashboardQueries } from './dashboard-repo.ts';
import { dashboardRoutes } from './dashboard-routes.ts';
import { exportRoutes } from './export-routes.ts';
import { createLiveHub } from './live-hub.ts';
import { dashboardPages } from './page-routes.ts';
import { scopedServices } from '../api/scoped-services.ts';
import { fieldServiceMaker } from '../field/index.ts';
import { digesterFeedSection, FIELD_SCRIPT, fieldPages } from '../field/field-page-routes.ts';
import { fieldRoutes } from '../field/field-routes.ts';
import { technicianAdminRoutes } from './technician-admin-routes.ts';
import { axeSerious } from '../test/page-checks.ts';

/**
 * The pages as people use them (issue 19 §"Broken or misleading today"), in Debian's Chromium at
 * a 360 px phone and a 1366 px desktop, for every role: no horizontal overflow, no CSP
 * violation, axe-core finds no serious or critical WCAG problem, and stale, offline and revoked
 * states say so in text. The browser runs in New York with US English: dates must still be in
 * the configured zone (Africa/Nairobi).
 */
const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM) && process.env.CI === 'true')
  throw new Error(`${CHROMIUM} is required in CI (apt-get install chromium) but is not installed`);
const PASSWORD = 'correct horse battery staple';
const SIZES = [
  { width: 360, height: 740 },
  { width: 1366, height: 900 },
] as const;
const MIN = 60_000;

let h: ApiHarness;
let browser: Browser;
let base: string;
const hub = createLiveHub({ flushMs: 50 });
const ids = { digester: '', bin: '', site: '', rollout: '' };
/** The newest hour of chart history and the active certificate's expiry, as the database wrote them. */
const seeded = { lastHour: new Date(0), notAfter: new Date(0) };
let setupLink = '';

beforeAll(async () => {
  const t = await createTestDatabase();
  const queries = createDashboardQueries({ mode: (await timeseriesInfo(t.database.pool)).mode });
  h = await createApiHarness(
    {
      https: selfSignedCertificate('127.0.0.1', 1),
      routes: ({ audit, db, authenticator, users }) => {
        // The field pages (feeding log, needs-collection list) are in the menu: mounted as `thamani start` does.
        const make = fieldServiceMaker({ audit, queries, timeZone: 'Africa/Nairobi' });
        const field = scopedServices(db, make);
        return [
          { plugin: dashboardRoutes({ db, audit, authenticator, queries, hub }) },
          { plugin: exportRoutes({ db, queries, timeZone: 'Africa/Nairobi' }) },
          {
            plugin: dashboardPages({
              db,
              queries,
              timeZone: 'Africa/Nairobi',
              digesterSections: [{ render: digesterFeedSection(make), scripts: [FIELD_SCRIPT] }],
            }),
            root: true,
          },
          { plugin: fieldRoutes({ field, timeZone: 'Africa/Nairobi' }) },
          { plugin: fieldPages({ field, timeZone: 'Africa/Nairobi' }), root: true },
          {
            plugin: technicianAdminRoutes({
              db,
              audit,
              queries,
              hub,
              users,
              timeZone: 'Africa/Nairobi',
            }),
            root: true,
          },
        ];
      },
    },
    { t },
  );
  const owner = h.t.database.pool;
  await createAlertService({ pool: owner, logger: testLogger, notify: false }).ensureDefaults();
  const now = Date.now();
  const ago = (ms: number) => new Date(now - ms).toISOString();
  ids.site = (
    await owner.query<{ id: string }>(`INSERT INTO sites (name) VALUES ('UI School') RETURNING id`)
  ).rows[0]!.id;
  ids.digester = (
    await owner.query<{ id: string }>(
      `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', 'Mama Ngina Digester') RETURNING id`,
      [ids.site],
    )
  ).rows[0]!.id;
  ids.bin = (
    await owner.query<{ id: string }>(
      `INSERT INTO units (site_id, kind, name) VALUES ($1, 'collection_point', 'Gate Bin') RETURNING id`,
      [ids.site],
    )
  ).rows[0]!.id;
  // The digester's sensor is online; its H₂S value is 40 minutes old (past the 15 min expected interval).
  await owner.query(
    `INSERT INTO devices (id, unit_id, kind, status, online, last_seen_at, firmware_version) VALUES ('bd-ui-1', $1, 'biodigester', 'active', true, $2, '1.4.2')`,
    [ids.digester, ago(30_000)],
  );
  // The bin's sensor went offline 19 minutes ago with a fill level that looks fine, and its only certificate is revoked.
  await owner.query(
    `INSERT INTO devices (id, unit_id, kind, status, online, last_seen_at, firmware_version) VALUES ('cp-ui-1', $1, 'collection_point', 'active', false, $2, '2.0.0')`,
    [ids.bin, ago(19 * MIN)],
  );
  const fresh: Record<string, number> = {
    temperature_c: 35.2,
    ph: 7.1,
    biogas_pressure_kpa: 4.1,
    methane_pct: 61,
    gas_flow_lpm: 3.5,
    slurry_level_pct: 74,
    battery_v: 3.9,
    rssi_dbm: -70,
  };
  for (const [metric, value] of Object.entries(fresh))
    await owner.query(
      `INSERT INTO latest_readings (device_id, metric, unit_id, ts, value) VALUES ('bd-ui-1', $1, $2, $3, $4)`,
      [metric, ids.digester, ago(30_000), value],
    );
  await owner.query(
    `INSERT INTO latest_readings (device_id, metric, unit_id, ts, value) VALUES ('bd-ui-1', 'h2s_ppm', $1, $2, 310)`,
    [ids.digester, ago(40 * MIN)],
  );
  for (const [metric, value] of Object.entries({
    fill_level_pct: 40,
    weight_kg: 55,
    lid_open: 0,
    temperature_c: 24,
    battery_v: 3.8,
  }))
    await owner.query(
      `INSERT INTO latest_readings (device_id, metric, unit_id, ts, value) VALUES ('cp-ui-1', $1, $2, $3, $4)`,
      [metric, ids.bin, ago(19 * MIN), value],
    );
  await owner.query(
    `INSERT INTO certificates (serial, device_id, fingerprint_sha256, not_before, not_after, status, revoked_at, issued_by, pem) VALUES
       ('0a11', 'bd-ui-1', 'fp-active', now() - interval '10 days', now() + interval '355 days', 'active', NULL, 'admin', 'x'),
       ('0b22', 'cp-ui-1', 'fp-revoked', now() - interval '10 days', now() + interval '355 days', 'revoked', now() - interval '1 hour', 'admin', 'x')`,
  );
  // 24 h of hourly history for the chart.
  await owner.query(
    `INSERT INTO readings (ts, device_id, unit_id, seq, temperature_c, ph, biogas_pressure_kpa, methane_pct, gas_flow_lpm, slurry_level_pct, h2s_ppm)
     SELECT date_trunc('hour', now()) - make_interval(hours => g), 'bd-ui-1', $1, 100 - g, 35, 7.1, 4, 60, 3, 75, 300 FROM generate_series(1, 30) g`,
    [ids.digester],
  );
  const {
    rows: [last],
  } = await owner.query<{ ts: Date; not_after: Date }>(
    `SELECT (SELECT max(ts) FROM readings) AS ts, (SELECT not_after FROM certificates WHERE serial = '0a11') AS not_after`,
  );
  seeded.lastHour = last!.ts;
  seeded.notAfter = last!.not_after;
  // A firmware release and a rollout in progress (its page is one of a technician's).
  await owner.query(
    `INSERT INTO firmware_images (sha256, device_kind, version, size, image, uploaded_by, approved_by, approved_at) VALUES ('${'ab'.repeat(32)}', 'biodigester', '1.5.0', 4, '\\x00010203', 'ui-technician', 'ui-admin', now())`,
  );
  ids.rollout = (
    await owner.query<{ id: string }>(
      `INSERT INTO firmware_rollouts (image_sha256, target, wave_size, failure_threshold, manifest_ttl_hours, created_by) VALUES ('${'ab'.repeat(32)}', '{}', 5, 0.2, 72, 'ui-technician') RETURNING id`,
    )
  ).rows[0]!.id;
  await owner.query(
    `INSERT INTO firmware_rollout_devices (rollout_id, device_id, wave, status, from_version) VALUES ($1, 'bd-ui-1', 1, 'sent', '1.4.2')`,
    [ids.rollout],
  );
  // Open alerts: the bin is offline; the digester's pH was low three times today (two closed, grouped).
  await owner.query(
    `INSERT INTO alerts (rule_id, device_id, unit_id, severity, status, opened_at, closed_at, open_value) VALUES
       ('collection_point.device.offline', 'cp-ui-1', $2, 'warning', 'open', now() - interval '4 minutes', NULL, 19),
       ('biodigester.ph.low', 'bd-ui-1', $1, 'warning', 'open', now() - interval '10 minutes', NULL, 6.7),
       ('biodigester.ph.low', 'bd-ui-1', $1, 'warning', 'closed', now() - interval '3 hours', now() - interval '2 hours', 6.6),
       ('biodigester.ph.low', 'bd-ui-1', $1, 'warning', 'closed', now() - interval '5 hours', now() - interval '4 hours', 6.7)`,
    [ids.digester, ids.bin],
  );
  for (const role of ['admin', 'technician', 'kitchen_manager', 'collector'] as const) {
    const { user } = await createUserWithPassword(h, {
      username: `ui-${role.replace('_', '-')}`,
      role,
      password: PASSWORD,
    });
    if (role === 'kitchen_manager') await h.users.assignUnits(user.id, [ids.digester], systemActor);
    if (role === 'collector') await h.users.assignUnits(user.id, [ids.bin], systemActor);
  }
  setupLink = new URL(
    (
      await h.users.create(
        { username: 'ui-new', displayName: 'New User', role: 'collector' },
        systemActor,
      )
    ).setupLink,
  ).search;
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  base = `https://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 180_000);

afterAll(async () => {
  await browser?.close();
});

interface Opened {
  context: BrowserContext;
  page: Page;
  /** CSP violations and script errors seen so far. */
  problems: string[];
}

async function open(size: { width: number; height: number }): Promise<Opened> {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: size,
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
  return { context, page, problems };
}

async function signIn(size: { width: number; height: number }, role: Role): Promise<Opened> {
  const o = await open(size);
  await o.page.goto(`${base}/login`);
  await o.page.fill('input[name=username]', `ui-${role.replace('_', '-')}`);
  await o.page.fill('input[name=password]', PASSWORD);
  await Promise.all([
    o.page.waitForURL((u) => u.pathname !== '/login'),
    o.page.click('button[type=submit]'),
  ]);
  return o;
}

/** No horizontal scrolling of the page itself (a table may scroll inside its own box). */
async function overflow(page: Page): Promise<number> {
  return page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
}

/** "19 minutes ago" → 19; anything else fails the test. */
function minutesAgo(text: string | null): number {
  const m = /^(\d+) minutes ago$/.exec(text ?? '');
  expect(m, `an age in minutes, got ${text}`).not.toBeNull();
  return Number(m![1]);
}

/** Each page a role can reach: its menu plus the detail pages it may open. */
async function pagesOf(page: Page, role: Role): Promise<string[]> {
  await page.goto(`${base}/`);
  const nav = await page
    .locator('header nav a')
    .evaluateAll((as) => as.map((a) => new URL((a as HTMLAnchorElement).href).pathname));
  const extra =
    role === 'admin' || role === 'kitchen_manager' ? [`/digesters/${ids.digester}`] : [];
  if (role === 'admin' || role === 'technician')
    extra.push('/fleet/cp-ui-1', '/fleet/bd-ui-1', `/firmware/rollouts/${ids.rollout}`);
  if (role === 'admin' || role === 'kitchen_manager')
    extra.push(`/digesters/${ids.digester}/feedings`);
  if (role !== 'kitchen_manager') extra.push(`/collection/points/${ids.bin}`);
  return [...nav, ...extra];
}

async function checkPage(o: Opened, url: string, label: string, status = 200): Promise<void> {
  const res = await o.page.goto(`${base}${url}`);
  expect(res?.status(), label).toBe(status);
  await o.page.waitForLoadState('load');
  if (await o.page.locator('#chart').count()) await o.page.waitForSelector('#chart canvas');
  expect(await o.page.locator('meta[name=viewport]').count(), `${label}: viewport tag`).toBe(1);
  expect(
    await o.page.evaluate(() => getComputedStyle(document.body).margin),
    `${label}: the stylesheet applies`,
  ).toBe('0px');
  expect(await overflow(o.page), `${label}: horizontal overflow`).toBeLessThanOrEqual(0);
  expect(await axeSerious(o.page), `${label}: axe`).toEqual([]);
  expect(o.problems, `${label}: CSP or script errors`).toEqual([]);
}

describe('pages in Chromium at 360 px and 1366 px (issue 19)', () => {
  it('sign-in and setup pages: viewport tag, the stylesheet, no overflow, no axe problem', async () => {
    for (const size of SIZES) {
      const o = await open(size);
      await checkPage(o, '/login', `/login @${size.width}`);
      await checkPage(o, `/setup${setupLink}`, `/setup @${size.width}`);
      await o.context.close();
    }
  });

  for (const role of ['admin', 'technician', 'kitchen_manager', 'collector'] as const) {
    it(`every page of a ${role}: no overflow at 360 px, no CSP violation, no serious or critical axe violation`, async () => {
      for (const size of SIZES) {
        const o = await signIn(size, role);
        const urls = await pagesOf(o.page, role);
        expect(urls.length).toBeGreaterThan(0);
        for (const url of urls) await checkPage(o, url, `${role} ${url} @${size.width}`);
        // The refusal and not-found pages are pages too.
        const [missing, status] =
          role === 'collector'
            ? ['/fleet', 403]
            : role === 'kitchen_manager'
              ? ['/digesters/00000000-0000-4000-8000-000000000000', 404]
              : ['/fleet/no-such-device', 404];
        await checkPage(o, missing, `${role} ${missing} @${size.width}`, status);
        await o.context.close();
      }
    }, 240_000);
  }

  it('/docs keeps the CSP and fits a phone', async () => {
    const o = await open(SIZES[0]);
    await o.page.goto(`${base}/docs`);
    await o.page.waitForSelector('.swagger-ui .info');
    expect(await o.page.locator('meta[name=viewport]').count()).toBe(1);
    expect(await overflow(o.page)).toBeLessThanOrEqual(0);
    expect(o.problems).toEqual([]);
    await o.context.close();
  });

  it('device page: the status row keeps each label with its value at both sizes', async () => {
    for (const size of SIZES) {
      const o = await signIn(size, 'technician');
      await o.page.goto(`${base}/fleet/cp-ui-1`);
      const items = o.page.locator('dl.status > div');
      expect(await items.count()).toBeGreaterThanOrEqual(5);
      for (const item of await items.all()) {
        const [dt, dd] = [item.locator('dt'), item.locator('dd')];
        expect(await dt.count()).toBe(1);
        expect((await dd.textContent())?.trim()).not.toBe('');
      }
      const state = o.page.locator('dl.status .badge').first();
      expect(await state.textContent()).toBe('offline');
      expect((await state.boundingBox())!.height).toBeLessThan(32);
      expect(await o.page.locator('dl.status').textContent()).toMatch(/Firmware\s*2\.0\.0/);
      expect(await o.page.locator('dl.status').textContent()).toMatch(/Battery\s*3\.80 V/);
      // The only certificate is revoked: the page says so.
      expect(await o.page.locator('dl.status').textContent()).toMatch(/Certificate\s*revoked/);
      await o.context.close();
    }
  });

  it('stale and offline values say so in text, show their age, and are not coloured healthy', async () => {
    const o = await signIn(SIZES[0], 'collector');
    // Nothing is known to need collection, but the only bin's fill level is not current: the summary does not say "nothing to collect".
    expect(await o.page.locator('main > p.sub').textContent()).toMatch(
      /^Fill levels not current: 1/,
    );
    const card = o.page.locator(`article.card[data-unit="${ids.bin}"]`);
    expect(await card.textContent()).toContain('sensor offline');
    expect(await card.getAttribute('class')).not.toContain('healthy');
    for (const tile of await card.locator('.tile').all()) {
      expect(await tile.getAttribute('class')).toContain('stale');
      // The age as the page wrote it: at least the 19 minutes it was seeded with (the run may be slow).
      expect(minutesAgo(await tile.locator('.age').textContent())).toBeGreaterThanOrEqual(19);
    }
    await o.context.close();

    const m = await signIn(SIZES[0], 'kitchen_manager');
    await m.page.goto(`${base}/digesters/${ids.digester}`);
    const h2s = m.page.locator('.tile[data-metric="h2s_ppm"]');
    expect(await h2s.getAttribute('class')).toContain('stale');
    expect(minutesAgo(await h2s.locator('.age').textContent())).toBeGreaterThanOrEqual(40);
    expect(await h2s.textContent()).toMatch(/stale|old/i);
    const temp = m.page.locator('.tile[data-metric="temperature_c"]');
    expect(await temp.getAttribute('class')).not.toContain('stale');
    expect(await temp.locator('.age').textContent()).toMatch(
      /^(\d+ seconds? ago|\d+ minutes? ago|now)$/,
    );
    // State in text, not colour only: a healthy tile says so to a screen reader and on screen.
    expect(await temp.locator('.state').textContent()).toBe('ok');
    await m.context.close();
  });

  it('fleet: a revoked certificate reads "revoked"; on a phone hidden columns are hinted and the menu shows Alerts', async () => {
    const o = await signIn(SIZES[0], 'technician');
    await o.page.goto(`${base}/fleet`);
    const row = o.page.locator('[data-device="cp-ui-1"]');
    expect(await row.textContent()).toContain('revoked');
    expect(await row.textContent()).not.toContain('none');
    // Every fact of a device is on screen without sideways scrolling (cards on a phone).
    for (const label of ['Battery', 'Signal', 'Firmware', 'Certificate', 'Quarantine', 'Alerts']) {
      const cell = row.locator(`[data-label="${label}"]`);
      expect(await cell.isVisible(), label).toBe(true);
      const box = (await cell.boundingBox())!;
      expect(box.x + box.width, label).toBeLessThanOrEqual(360);
    }
    const alerts = o.page.locator('header nav a', { hasText: 'Alerts' });
    const box = (await alerts.boundingBox())!;
    expect(box.x + box.width).toBeLessThanOrEqual(360);
    expect(box.x).toBeGreaterThanOrEqual(0);
    await o.context.close();
  });

  it('dates: the configured zone and the browser language, with the year on certificate expiry', async () => {
    const o = await signIn(SIZES[1], 'technician');
    await o.page.goto(`${base}/fleet/bd-ui-1`);
    const expires = await o.page
      .locator('table.certs tbody tr')
      .first()
      .locator('td')
      .nth(3)
      .textContent();
    const notAfter = seeded.notAfter;
    expect(expires).toContain(
      String(
        new Intl.DateTimeFormat('en-US', { timeZone: 'Africa/Nairobi', year: 'numeric' }).format(
          notAfter,
        ),
      ),
    );
    // US English month-first, in Nairobi time (the browser is in New York).
    expect(expires).toContain(
      new Intl.DateTimeFormat('en-US', {
        timeZone: 'Africa/Nairobi',
        month: 'short',
        day: 'numeric',
      }).format(notAfter),
    );
    await o.context.close();
  });

  it('alerts: links, units, grouping, guidance for each rule, and a live-added alert acknowledged without reload', async () => {
    const o = await signIn(SIZES[0], 'admin');
    await o.page.goto(`${base}/alerts`);
    const open = o.page.locator('#alerts li.alert');
    for (const li of await open.all()) {
      expect(await li.locator('a[href^="/fleet/"]').count()).toBe(1);
      expect(await li.locator('a[href^="/digesters/"], a[href^="/collection"]').count()).toBe(1);
      expect((await li.locator('.guidance').textContent())?.length).toBeGreaterThan(10);
    }
    expect(
      await o.page
        .locator('#alerts li.alert[data-rule="collection_point.device.offline"]')
        .textContent(),
    ).toContain('19 min');
    expect(
      await o.page.locator('#alerts li.alert[data-rule="biodigester.ph.low"]').textContent(),
    ).toContain('6.70');
    const closed = o.page.locator('#closed li.alert[data-rule="biodigester.ph.low"]');
    expect(await closed.count()).toBe(1);
    expect(await closed.textContent()).toContain('2 times');

    await o.page.waitForSelector('#live.on');
    const { rows } = await h.t.database.pool.query<{ id: number }>(
      `INSERT INTO alerts (rule_id, device_id, unit_id, severity, status, opened_at, open_value) VALUES ('biodigester.temperature_c.high', 'bd-ui-1', $1, 'critical', 'open', now(), 46.5) RETURNING id::int AS id`,
      [ids.digester],
    );
    const id = rows[0]!.id;
    hub.publish({
      type: 'alert',
      alert: {
        id,
        unitId: ids.digester,
        deviceId: 'bd-ui-1',
        ruleId: 'biodigester.temperature_c.high',
        title: 'Digester too warm (mesophilic band)',
        severity: 'critical',
        status: 'open',
        value: 46.5,
      },
    });
    const li = o.page.locator(`li.alert[data-alert-id="${id}"]`);
    await li.waitFor();
    expect(await li.textContent()).toContain('46.5 °C');
    await li.locator('input[name=note]').fill('opened the cover to cool');
    await li.locator('button[type=submit]').click();
    await expect.poll(() => li.textContent()).toContain('Acknowledged by ui-admin');
    await o.context.close();
  });

  it('chart: threshold lines, a legend at 360 px, the selected metric marked, a text alternative in Nairobi time', async () => {
    const o = await signIn(SIZES[0], 'kitchen_manager');
    await o.page.goto(`${base}/digesters/${ids.digester}`);
    await o.page.waitForSelector('#chart canvas');
    expect(await o.page.locator('#chart .u-legend').isVisible()).toBe(true);
    expect(
      await o.page.locator('button.tile[data-metric="temperature_c"]').getAttribute('aria-pressed'),
    ).toBe('true');
    await expect
      .poll(() => o.page.locator('#chart').getAttribute('data-thresholds'))
      .toBe('25,30,40,45');
    await o.page.click('button.tile[data-metric="ph"]');
    expect(await o.page.locator('button.tile[data-metric="ph"]').getAttribute('aria-pressed')).toBe(
      'true',
    );
    expect(
      await o.page.locator('button.tile[data-metric="temperature_c"]').getAttribute('aria-pressed'),
    ).toBe('false');
    await expect
      .poll(() => o.page.locator('#chart').getAttribute('data-thresholds'))
      .toBe('6.5,6.8,7.8,8.2');
    // The text alternative: a summary and the newest buckets in a table, in Nairobi's hours.
    const summary = await o.page.locator('#chart-summary').textContent();
    expect(summary).toMatch(/pH/);
    const nairobi = new Intl.DateTimeFormat('en-US', {
      timeZone: 'Africa/Nairobi',
      hour: 'numeric',
      minute: '2-digit',
    }).format(seeded.lastHour);
    expect(await o.page.locator('#chart-table').textContent()).toContain(nairobi);
    await o.context.close();
  });

  it('a kitchen manager chooses Kiswahili in the header: the page and what the script writes are in Swahili, fit a phone and pass axe; then back to the browser’s', async () => {
    const o = await signIn(SIZES[0], 'kitchen_manager');
    await o.page.goto(`${base}/digesters/${ids.digester}`);
    expect(await o.page.getAttribute('html', 'lang')).toBe('en');
    const choose = async (value: string) => {
      await o.page.selectOption('form[data-language] select', value);
      await Promise.all([
        o.page.waitForEvent('load'),
        o.page.click('form[data-language] button[type=submit]'),
      ]);
    };
    await choose('sw');
    expect(await o.page.getAttribute('html', 'lang')).toBe('sw');
    await o.page.waitForSelector('#chart canvas');
    // Written by the client script from the page data's messages.
    await expect
      .poll(() => o.page.locator('#chart-title').textContent())
      .toBe('Joto (°C) · saa 24');
    expect(await o.page.locator('#chart-summary').textContent()).toMatch(
      /^Joto, saa 24: wastani \d+ wa kila saa, kutoka /,
    );
    expect(await o.page.locator('#chart .u-legend').textContent()).toContain('Wastani');
    expect(await o.page.locator('main > p.sub').textContent()).toContain('Tahadhari wazi: ');
    expect(await overflow(o.page)).toBeLessThanOrEqual(0);
    expect(await axeSerious(o.page)).toEqual([]);
    expect(o.problems).toEqual([]);
    await choose('browser');
    expect(await o.page.getAttribute('html', 'lang')).toBe('en');
    await expect
      .poll(() => o.page.locator('#chart-title').textContent())
      .toBe('Temperature (°C) · 24 h');
    await o.context.close();
  });

  it('a kitchen manager downloads the digester’s readings as CSV from its page', async () => {
    const o = await signIn(SIZES[0], 'kitchen_manager');
    await o.page.goto(`${base}/digesters/${ids.digester}`);
    const [download] = await Promise.all([
      o.page.waitForEvent('download'),
      o.page.click('form.download button:has-text("Readings (CSV)")'),
    ]);
    expect(download.suggestedFilename()).toMatch(
      /^mama-ngina-digester-readings-\d{4}-\d{2}-\d{2}-to-\d{4}-\d{2}-\d{2}\.csv$/,
    );
    const text = readFileSync(await download.path(), 'utf8');
    expect(text.split('\r\n')[0]).toBe(
      'ts_utc,local_time (Africa/Nairobi),device_id,seq,temperature_c,ph,biogas_pressure_kpa,methane_pct,gas_flow_lpm,slurry_level_pct,h2s_ppm',
    );
    expect(text.split('\r\n').length).toBeGreaterThan(24);
    await o.context.close();
  });
});
