/// <reference lib="dom" />
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../api/dev-cert.ts';
import { createAuditLog } from '../audit/index.ts';
import { createDashboardQueries } from '../dashboards/dashboard-repo.ts';
import { dashboardPages } from '../dashboards/page-routes.ts';
import { timeseriesInfo } from '../db/timeseries.ts';
import { createApiHarness, type ApiHarness } from '../test/api-harness.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { seedDigesterMonth } from '../test/mrv-fixture.ts';
import { createMrvRepo, createMrvService, monthPeriod, mrvSignerFromKey } from './index.ts';
import { createVerifierRepo } from './verifier-repo.ts';
import { verifierRoutes } from './verifier-routes.ts';
import { createVerifierAdmin } from './verifier-service.ts';
import { axeSerious } from '../test/page-checks.ts';

/**
 * The verifier's pages in Debian's Chromium, as a verification body uses them: sign in with the
 * token, open the report, see the production charts drawn, download the signed JSON, print the
 * report. At a phone and a desktop width: no horizontal overflow, no CSP violation or script
 * error, and axe-core finds no serious or critical WCAG problem. In Swahili for a Swahili browser.
 */
const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM) && process.env.CI === 'true')
  throw new Error(`${CHROMIUM} is required in CI (apt-get install chromium) but is not installed`);
const SIZES = [
  { width: 360, height: 740 },
  { width: 1366, height: 900 },
] as const;
const actor = {
  actorId: 'cli:test',
  actorRole: 'admin',
  ip: null,
  userAgent: null,
  requestId: null,
};

let h: ApiHarness;
let browser: Browser;
let base: string;
let secret: string;
let reportId: string;

beforeAll(async () => {
  h = await createApiHarness({
    https: selfSignedCertificate('127.0.0.1', 1),
    routes: ({ db, audit }) => [
      { plugin: verifierRoutes({ db, audit, timeZone: 'Africa/Nairobi' }), root: true },
      {
        plugin: dashboardPages({
          db,
          queries: createDashboardQueries({ mode: 'partitioned' }),
          timeZone: 'Africa/Nairobi',
        }),
        root: true,
      },
    ],
  });
  const owner = h.t.database;
  expect((await timeseriesInfo(owner.pool)).mode).toBeDefined();
  const fx = await seedDigesterMonth(owner.pool, { minutes: 3 * 1440 });
  const audit = createAuditLog({ db: owner.db, signer: testAuditSigner });
  reportId = (
    await createMrvService({
      db: owner.db,
      repo: createMrvRepo(),
      audit,
      signer: mrvSignerFromKey(generateKeyPairSync('ed25519').privateKey),
    }).issue({ unit: fx.unitId, ...monthPeriod('2026-10'), actor })
  ).id;
  secret = (
    await createVerifierAdmin({ db: owner.db, repo: createVerifierRepo(), audit }).create(
      { name: 'VVB audit', units: [fx.unitId], fromMonth: '2026-10', toMonth: '2026-10', days: 5 },
      actor,
    )
  ).secret;
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  base = `https://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 300_000);

afterAll(async () => {
  await browser?.close();
});

const overflow = (page: Page) =>
  page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);

describe('the verifier page in Chromium', () => {
  for (const size of SIZES)
    it(`signs in, shows the report with its charts, downloads and prints it at ${size.width} px`, async () => {
      const context = await browser.newContext({
        ignoreHTTPSErrors: true,
        viewport: size,
        locale: 'en-US',
        acceptDownloads: true,
      });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(m.text());
      });
      page.on('pageerror', (err) => problems.push(String(err)));
      try {
        await page.goto(`${base}/verifier`);
        expect(await page.locator('h1').textContent()).toBe('Verifier access');
        expect(await axeSerious(page), 'sign-in: axe').toEqual([]);
        await page.fill('input[name=token]', secret);
        await Promise.all([page.waitForURL(`${base}/verifier`), page.click('button[type=submit]')]);
        expect(await page.locator('h1').textContent()).toBe('MRV reports');
        expect(await page.locator(`tr[data-report="${reportId}"]`).count()).toBe(1);
        expect(await axeSerious(page), 'list: axe').toEqual([]);
        expect(await overflow(page), 'list: overflow').toBeLessThanOrEqual(0);

        await Promise.all([
          page.waitForURL(`${base}/verifier/reports/${reportId}`),
          page.click(`tr[data-report="${reportId}"] a`),
        ]);
        // The charts are drawn from the report's own readings (three days of October).
        for (const id of ['#chart-flow', '#chart-methane']) {
          await page.waitForSelector(`${id} canvas`);
          expect(Number(await page.locator(id).getAttribute('data-points'))).toBe(3 * 24);
        }
        expect(await page.locator('table.daily tbody tr').count()).toBe(3);
        expect(await axeSerious(page), 'report: axe').toEqual([]);
        expect(await overflow(page), 'report: overflow').toBeLessThanOrEqual(0);

        const [download] = await Promise.all([
          page.waitForEvent('download'),
          page.click('a[href$="/report.json"]'),
        ]);
        const stored = await h.t.database.pool.query<{ document: string }>(
          'SELECT document FROM mrv_reports WHERE id = $1',
          [reportId],
        );
        expect(await readFile(await download.path(), 'utf8')).toBe(stored.rows[0]!.document);

        await page.goto(`${base}/verifier/reports/${reportId}/report.html`);
        expect(await axeSerious(page), 'printable: axe').toEqual([]);
        expect(await overflow(page), 'printable: overflow').toBeLessThanOrEqual(0);
        await page.emulateMedia({ media: 'print' });
        expect(await page.evaluate(() => getComputedStyle(document.body).color)).toBe(
          'rgb(0, 0, 0)',
        );
        const pdf = await page.pdf({ format: 'A4' });
        expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
        expect(problems, 'CSP or script errors').toEqual([]);
      } finally {
        await context.close();
      }
    });

  it('speaks Swahili to a Swahili browser', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'sw-KE' });
    try {
      const page = await context.newPage();
      await page.goto(`${base}/verifier`);
      expect(await page.locator('h1').textContent()).toBe('Ufikiaji wa mthibitishaji');
      expect(await page.getAttribute('html', 'lang')).toBe('sw');
    } finally {
      await context.close();
    }
  });
});
