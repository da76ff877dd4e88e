/// <reference lib="dom" />
import { existsSync } from 'node:fs';
import type { MqttClient } from 'mqtt';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiClient, type ApiClient } from '../simulators/api-client.ts';
import { httpsRequest } from '../simulators/https-json.ts';
import { deviceKeyAndCsr } from '../simulators/keys.ts';
import { tryConnect } from '../test/broker-fixture.ts';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { startGateway, type Gateway } from '../test/gateway.ts';
import { axeSerious } from '../test/page-checks.ts';
import { waitFor } from '../test/wait.ts';

/**
 * A unit's own alert threshold set in a real browser (Debian's Chromium) against the real
 * gateway (`thamani start` in a child process), with two digesters reporting over mTLS MQTT:
 * the technician raises nothing for the kind, lowers "too warm" for digester A only, and the
 * same reading opens an alert on A at A's new threshold while B, of the same kind, stays quiet
 * (B alerts only past the kind's own threshold). The page passes axe, fits 360 px and 1366 px,
 * and says a refused threshold in the reader's language.
 */
const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM) && process.env.CI === 'true')
  throw new Error(`${CHROMIUM} is required in CI (apt-get install chromium) but is not installed`);
const PASSWORD = 'override browser password';
const PHONE = { width: 360, height: 740 };
const DESKTOP = { width: 1366, height: 900 };
const RULE = 'biodigester.temperature_c.high';

let t: TestDatabase;
let gw: Gateway;
let browser: Browser;
let api: ApiClient;
let adminToken: string;
const units: Record<'A' | 'B', string> = { A: '', B: '' };
const devices: Record<'A' | 'B', MqttClient | undefined> = { A: undefined, B: undefined };

async function call<T>(method: string, p: string, body?: unknown): Promise<T> {
  const res = await httpsRequest(`${gw.apiUrl}/api/v1${p}`, {
    ca: gw.ca,
    method,
    ...(body !== undefined ? { body } : {}),
    headers: { authorization: `Bearer ${adminToken}` },
  });
  if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${res.body}`);
  return res.json<T>();
}

/** A device of the unit, enrolled with its one-time token, connected as a device does. */
async function enrolled(id: string, unit: string): Promise<MqttClient> {
  await api.registerDevice({ id, unit, site: 'Override School' });
  const { key, csr } = deviceKeyAndCsr(id, 'ec');
  const issued = await api.enroll(await api.enrolmentToken(id), csr);
  return tryConnect(gw.mqttUrl, {
    key,
    cert: issued.certificate,
    ca: gw.ca,
    clientId: id,
    protocolVersion: 4,
  });
}

let seq = 1;
async function report(which: 'A' | 'B', temperature: number): Promise<void> {
  await devices[which]!.publishAsync(
    `devices/ov-${which.toLowerCase()}/telemetry`,
    JSON.stringify({
      seq: seq++,
      ts: new Date().toISOString(),
      readings: { temperature_c: temperature },
    }),
    { qos: 1 },
  );
}

beforeAll(async () => {
  t = await createTestDatabase();
  gw = await startGateway({ database: t.name });
  adminToken = (
    JSON.parse(await gw.cli(['user', 'token', 'ov-ui-admin', '--role', 'admin', '--json'])) as {
      token: string;
    }
  ).token;
  api = createApiClient({ baseUrl: gw.apiUrl, token: adminToken, ca: gw.ca });
  await api.ensureSiteAndUnit('Override School', 'Digester A', 'biodigester');
  await api.ensureSiteAndUnit('Override School', 'Digester B', 'biodigester');
  const listed = (await call<{ units: { id: string; name: string }[] }>('GET', '/units')).units;
  units.A = listed.find((u) => u.name === 'Digester A')!.id;
  units.B = listed.find((u) => u.name === 'Digester B')!.id;
  devices.A = await enrolled('ov-a', 'Digester A');
  devices.B = await enrolled('ov-b', 'Digester B');
  const made = await call<{ setupLink: string }>('POST', '/users', {
    username: 'tech-ov',
    displayName: 'tech-ov',
    role: 'technician',
  });
  const set = await httpsRequest(`${gw.apiUrl}/setup`, {
    ca: gw.ca,
    method: 'POST',
    body: new URLSearchParams({
      token: new URL(made.setupLink).searchParams.get('token')!,
      password: PASSWORD,
    }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  expect(set.status).toBe(200);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 240_000);

afterAll(async () => {
  for (const d of Object.values(devices)) d?.end(true);
  await browser?.close();
  gw?.stop();
});

async function signIn(size: { width: number; height: number }, locale = 'en-KE') {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: size,
    timezoneId: 'Africa/Nairobi',
    locale,
  });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text()))
      problems.push(m.text());
  });
  page.on('pageerror', (err) => problems.push(String(err)));
  await page.goto(`${gw.apiUrl}/login`);
  await page.fill('input[name=username]', 'tech-ov');
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([
    page.waitForURL((u) => u.pathname !== '/login'),
    page.click('button[type=submit]'),
  ]);
  return { page, problems };
}

/** No overflow at its width, axe clean, no CSP or script error. */
async function checkPage(o: Awaited<ReturnType<typeof signIn>>, label: string): Promise<void> {
  const overflow = await o.page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow, `${label}: horizontal overflow`).toBeLessThanOrEqual(0);
  expect(await axeSerious(o.page), `${label}: axe`).toEqual([]);
  expect(o.problems, `${label}: CSP or script errors`).toEqual([]);
}

const alertsOf = async (deviceId: string) =>
  (
    await t.database.pool.query<{ severity: string; status: string; open_value: number }>(
      `SELECT severity, status, open_value FROM alerts WHERE rule_id = $1 AND device_id = $2 ORDER BY id`,
      [RULE, deviceId],
    )
  ).rows;

describe('a unit’s own alert threshold, set in the browser', () => {
  it('opens an alert on that unit at its new threshold, while another unit of the kind stays quiet for the same value', async () => {
    const o = await signIn(PHONE);
    const { page } = o;
    await page.goto(`${gw.apiUrl}/manage/rules`);
    await checkPage(o, '/manage/rules with the unit picker at 360');
    await page.selectOption('form[data-unit-picker] select[name=unit]', units.A);
    await Promise.all([
      page.waitForURL((u) => u.pathname === `/manage/rules/units/${units.A}`),
      page.click('form[data-unit-picker] button[type=submit]'),
    ]);
    await checkPage(o, 'unit thresholds at 360');
    const form = page.locator(`form[data-rule="${RULE}"]`);
    expect(await form.getAttribute('data-overridden')).toBe('false');
    // Too warm from 36 °C for this digester (the kind's rule: 40 °C, clears at 39 °C).
    await form.locator('input[name=warn]').fill('36');
    await form.locator('input[name=critical]').fill('45');
    await form.locator('input[name=clear]').fill('35');
    await form.locator('button').click();
    await page.getByText('Saved for Digester A').waitFor();
    const saved = page.locator(`form[data-rule="${RULE}"]`);
    expect(await saved.getAttribute('data-overridden')).toBe('true');
    // The kind's value is shown beside the unit's own.
    expect(await saved.innerText()).toContain('every unit: 40');
    await checkPage(o, 'unit thresholds after saving at 360');

    // The same reading on both digesters: 38 °C is past A's threshold, not the kind's.
    await report('B', 38);
    await report('A', 38);
    await waitFor('an alert on digester A', async () => (await alertsOf('ov-a')).length > 0);
    expect(await alertsOf('ov-a')).toEqual([
      { severity: 'warning', status: 'open', open_value: 38 },
    ]);
    // The cards colour the same value by each digester's own rule.
    await page.goto(`${gw.apiUrl}/digesters`);
    const tile = (unit: string) =>
      page.locator(`.tile[data-unit="${unit}"][data-metric="temperature_c"]`);
    await waitFor(
      'both digesters’ readings on their cards',
      async () => (await tile(units.B).innerText()).includes('38'),
      Boolean,
    );
    expect(await tile(units.A).getAttribute('class')).toContain('warning');
    expect(await tile(units.B).getAttribute('class')).toContain('healthy');
    // B alerts only past the kind's 40 °C: its first alert opened at 41, so 38 opened none.
    await report('B', 41);
    await waitFor('an alert on digester B', async () => (await alertsOf('ov-b')).length > 0);
    expect(await alertsOf('ov-b')).toEqual([
      { severity: 'warning', status: 'open', open_value: 41 },
    ]);
    const audit = await t.database.pool.query<{ actor_role: string; target_id: string }>(
      `SELECT actor_role, target_id FROM audit_log WHERE action = 'alert_rule.override'`,
    );
    expect(audit.rows).toEqual([{ actor_role: 'technician', target_id: units.A }]);
  }, 240_000);

  it('says a refused threshold in the reader’s language; the page fits and passes axe in English and Swahili', async () => {
    for (const size of [PHONE, DESKTOP]) {
      for (const locale of ['en-KE', 'sw-KE']) {
        const o = await signIn(size, locale);
        for (const url of ['/manage/rules', `/manage/rules/units/${units.B}`]) {
          await o.page.goto(`${gw.apiUrl}${url}`);
          await checkPage(o, `${url} (${locale}) at ${size.width}`);
        }
        // Clear above warn on a "too warm" rule would close an alert the same value opens.
        const form = o.page.locator(`form[data-rule="${RULE}"]`);
        await form.locator('input[name=warn]').fill('36');
        await form.locator('input[name=clear]').fill('37');
        await form.locator('button').click();
        const said = o.page.locator('.notice.alert[role=alert]');
        await said.waitFor();
        expect(await said.innerText()).toContain(
          locale === 'sw-KE' ? 'Haikuhifadhiwa' : 'Not saved',
        );
        expect(await said.innerText()).toContain('≤');
        await checkPage(o, `refused threshold (${locale}) at ${size.width}`);
        await o.page.context().close();
      }
    }
    // Nothing was written for B.
    const written = await t.database.pool.query(
      `SELECT 1 FROM alert_rule_overrides WHERE unit_id = $1`,
      [units.B],
    );
    expect(written.rowCount).toBe(0);
  }, 240_000);
});
