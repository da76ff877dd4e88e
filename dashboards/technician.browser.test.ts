/// <reference lib="dom" />
import { existsSync } from 'node:fs';
import type { MqttClient } from 'mqtt';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiClient, type ApiClient } from '../simulators/api-client.ts';
import { httpsRequest } from '../simulators/https-json.ts';
import { deviceKeyAndCsr } from '../simulators/keys.ts';
import { tryConnect } from '../test/broker-fixture.ts';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { startGateway, type Gateway } from '../test/gateway.ts';
import { waitFor } from '../test/wait.ts';
import { axeSerious } from '../test/page-checks.ts';

/**
 * The technician's whole job in a real browser (Debian's Chromium) against the real gateway
 * (`thamani start` in a child process), at a 360 px phone: register and enrol a device (token
 * and QR shown once, never on reload), the device enrols with that token and reports, revoking
 * its certificate in the browser cuts its MQTT session; the quarantine filtered by reason and
 * replayed in bulk. Every new page passes axe (no serious or critical violation), has no
 * horizontal overflow at 360 px and 1366 px, and breaks no CSP rule.
 */
const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM) && process.env.CI === 'true')
  throw new Error(`${CHROMIUM} is required in CI (apt-get install chromium) but is not installed`);
const PASSWORD = 'technician browser password';
const PHONE = { width: 360, height: 740 };
const DESKTOP = { width: 1366, height: 900 };

let t: TestDatabase;
let gw: Gateway;
let browser: Browser;
let api: ApiClient;
let adminToken: string;
let unitId = '';
const clients: MqttClient[] = [];

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

async function person(username: string, role: string): Promise<string> {
  const made = await call<{ user: { id: string }; setupLink: string }>('POST', '/users', {
    username,
    displayName: username,
    role,
  });
  const token = new URL(made.setupLink).searchParams.get('token')!;
  const set = await httpsRequest(`${gw.apiUrl}/setup`, {
    ca: gw.ca,
    method: 'POST',
    body: new URLSearchParams({ token, password: PASSWORD }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  expect(set.status).toBe(200);
  return made.user.id;
}

beforeAll(async () => {
  t = await createTestDatabase();
  gw = await startGateway({ database: t.name });
  adminToken = (
    JSON.parse(await gw.cli(['user', 'token', 'tech-ui-admin', '--role', 'admin', '--json'])) as {
      token: string;
    }
  ).token;
  api = createApiClient({ baseUrl: gw.apiUrl, token: adminToken, ca: gw.ca });
  await api.ensureSiteAndUnit('Tech School', 'Tech Digester', 'biodigester');
  unitId = (await call<{ units: { id: string; name: string }[] }>('GET', '/units')).units.find(
    (u) => u.name === 'Tech Digester',
  )!.id;
  await person('tech-one', 'technician');
  await person('tech-admin', 'admin');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 240_000);

afterAll(async () => {
  for (const c of clients) c.end(true);
  await browser?.close();
  gw?.stop();
});

interface Opened {
  page: Page;
  problems: string[];
}

async function signIn(
  username: string,
  size: { width: number; height: number },
  locale = 'en-KE',
): Promise<Opened> {
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
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([
    page.waitForURL((u) => u.pathname !== '/login'),
    page.click('button[type=submit]'),
  ]);
  return { page, problems };
}

/** The axe run of dashboards/ui.browser.test.ts: serious and critical violations only. */
/** What every page must be: no overflow at its width, axe clean, no CSP or script error. */
async function checkPage(o: Opened, label: string): Promise<void> {
  const overflow = await o.page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow, `${label}: horizontal overflow`).toBeLessThanOrEqual(0);
  expect(await axeSerious(o.page), `${label}: axe`).toEqual([]);
  expect(o.problems, `${label}: CSP or script errors`).toEqual([]);
}

describe('the technician in the browser', () => {
  it('registers and enrols a device: the token and its QR code are shown once; the device reports; revoking cuts it', async () => {
    const o = await signIn('tech-one', PHONE);
    const { page } = o;
    await page.goto(`${gw.apiUrl}/manage/devices/new`);
    await checkPage(o, 'register form');
    await page.selectOption('select[name=unit]', unitId);
    await page.fill('input[name=id]', 'bd-tech-1');
    await page.click('form[data-tech] button[type=submit]');
    const tokenInput = page.locator('[data-token]');
    await tokenInput.waitFor();
    const token = await tokenInput.inputValue();
    expect(token).toMatch(/^enr_[A-Za-z0-9_-]{43}$/);
    // The QR code is an SVG made on the server, labelled, with no inline style (the CSP forbids it).
    const qr = page.locator('figure[data-qr] svg');
    expect(await qr.count()).toBe(1);
    expect(await qr.getAttribute('aria-label')).toContain('bd-tech-1');
    expect(await page.locator('figure[data-qr] [style]').count()).toBe(0);
    await checkPage(o, 'enrolment token');

    // Reload: the same address is a GET of the form; the token is nowhere on it.
    await page.reload();
    expect(new URL(page.url()).pathname).toBe('/manage/devices/new');
    expect(await page.locator('[data-token]').count()).toBe(0);
    expect(await page.content()).not.toContain(token);

    // The device enrols with that token (as a device does, POST /api/v1/enroll) and reports.
    const { key, csr } = deviceKeyAndCsr('bd-tech-1', 'ec');
    const issued = await api.enroll(token, csr);
    const client = await tryConnect(gw.mqttUrl, {
      key,
      cert: issued.certificate,
      ca: gw.ca,
      clientId: 'bd-tech-1',
      protocolVersion: 4,
    });
    clients.push(client);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    await client.publishAsync(
      'devices/bd-tech-1/telemetry',
      JSON.stringify({
        seq: 1,
        ts: new Date().toISOString(),
        readings: { temperature_c: 35, battery_v: 3.9, rssi_dbm: -71 },
      }),
      { qos: 1 },
    );
    await waitFor('the device page to show bd-tech-1 online', async () => {
      await page.goto(`${gw.apiUrl}/fleet/bd-tech-1`);
      return (await page.locator('dl.status').innerText()).includes('online');
    });
    // Battery and signal history: the chart draws from the device's own series.
    await page.waitForSelector('#chart canvas');
    await checkPage(o, 'device page with actions and chart');

    // Revoke in the browser, with a reason and a confirmation.
    page.once('dialog', (d) => void d.accept());
    await page.selectOption('form.revoke select[name=reason]', 'keyCompromise');
    await Promise.all([
      page.waitForURL((u) => u.searchParams.get('done') === 'revoke'),
      page.click('form.revoke button[type=submit]'),
    ]);
    expect(await page.locator('.tech-actions [role=status]').innerText()).toMatch(/revoked/i);
    await closed; // the broker cut the live session
    await expect(
      tryConnect(gw.mqttUrl, {
        key,
        cert: issued.certificate,
        ca: gw.ca,
        clientId: 'bd-tech-1',
        protocolVersion: 4,
        reconnectPeriod: 0,
      }),
    ).rejects.toThrow();
    const audit = await t.database.pool.query<{ action: string; actor_role: string }>(
      `SELECT action, actor_role FROM audit_log WHERE target_id IN ('bd-tech-1', $1) AND actor_role = 'technician' ORDER BY seq`,
      [issued.serial],
    );
    expect(audit.rows.map((r) => r.action)).toEqual(
      expect.arrayContaining(['device.create', 'enrolment_token.create', 'certificate.revoke']),
    );
  }, 240_000);

  it('filters the quarantine by reason and replays the selected items in bulk', async () => {
    const pool = t.database.pool;
    const ts = new Date(Date.now() - 60_000).toISOString();
    const insert = (payload: string, code: string) =>
      pool.query<{ id: string }>(
        `INSERT INTO quarantine (device_id, unit_id, received_at, topic, payload, payload_size, reasons)
         VALUES ('bd-tech-1', $1, now(), 'devices/bd-tech-1/telemetry', convert_to($2, 'UTF8'), length($2), $3) RETURNING id`,
        [unitId, payload, JSON.stringify([{ field: 'readings', code, message: 'test' }])],
      );
    // Two that pass today's rules (as after a rule change), one of another reason, one hostile.
    const good = [
      await insert(
        JSON.stringify({ seq: 10, ts, readings: { temperature_c: 36 } }),
        'OUT_OF_RANGE',
      ),
      await insert(
        JSON.stringify({
          seq: 11,
          ts: new Date(Date.now() - 30_000).toISOString(),
          readings: { ph: 7 },
        }),
        'OUT_OF_RANGE',
      ),
    ].map((r) => String(r.rows[0]!.id));
    await insert('{"readings":{"x":1}}', 'UNKNOWN_METRIC');
    const hostile = (
      await insert('<script>alert(1)</script><img src=x onerror=alert(2)>', 'SCHEMA')
    ).rows[0]!.id;

    const o = await signIn('tech-one', PHONE);
    const { page } = o;
    await page.goto(`${gw.apiUrl}/manage/quarantine?reason=OUT_OF_RANGE&status=open`);
    await checkPage(o, 'quarantine');
    const ids = await page
      .locator('tr[data-quarantine]')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-quarantine')));
    expect(ids.sort()).toEqual([...good].sort());

    page.once('dialog', (d) => void d.accept());
    await page.click('[data-select-all]');
    await page.click('form#bulk button[value=replay]');
    await page.locator('main [role=status]').waitFor();
    expect(await page.locator('main [role=status]').innerText()).toMatch(
      /Replayed 2: 2 readings stored, 0 still refused/,
    );
    const after = await pool.query<{ id: string; status: string }>(
      `SELECT id::text, status FROM quarantine WHERE id = ANY($1::bigint[]) ORDER BY id`,
      [good],
    );
    expect(after.rows.map((r) => r.status)).toEqual(['replayed', 'replayed']);
    const audited = await pool.query(
      `SELECT 1 FROM audit_log WHERE action = 'quarantine.replay' AND actor_role = 'technician' AND target_id = ANY($1)`,
      [good],
    );
    expect(audited.rowCount).toBe(2);

    // A payload is shown as text: what a device sent never becomes markup.
    await page.goto(`${gw.apiUrl}/manage/quarantine/${hostile}`);
    expect(await page.locator('pre.payload').innerText()).toBe(
      '<script>alert(1)</script><img src=x onerror=alert(2)>',
    );
    expect(await page.locator('main script, main img').count()).toBe(0);
    await checkPage(o, 'quarantine item');
  }, 180_000);

  it('uploads firmware, another person approves it, the technician rolls it out; a rule is edited; an admin invites someone (link shown once) and assigns their unit', async () => {
    const pool = t.database.pool;
    const tech = await signIn('tech-one', PHONE);
    await tech.page.goto(`${gw.apiUrl}/firmware`);
    await tech.page.setInputFiles('input[name=image]', {
      name: 'fw.bin',
      mimeType: 'application/octet-stream',
      buffer: Buffer.from('firmware image bytes 2.0.0'),
    });
    await tech.page.fill('input[name=version]', '2.0.0');
    await tech.page.selectOption('select[name=deviceKind]', 'biodigester');
    await tech.page.click('form[data-upload] button[type=submit]');
    await tech.page.getByText('Release 2.0.0 uploaded').waitFor();
    await checkPage(tech, 'firmware after upload');

    // Four eyes: the uploader has no approve button for their own release's approval to pass; an admin approves.
    const admin = await signIn('tech-admin', DESKTOP);
    await admin.page.goto(`${gw.apiUrl}/firmware`);
    admin.page.once('dialog', (d) => void d.accept());
    await admin.page
      .locator('form[action$="/approve"]', { hasText: '2.0.0' })
      .locator('button')
      .click();
    await admin.page.getByText('Release approved.').waitFor();

    await tech.page.goto(`${gw.apiUrl}/firmware`);
    await tech.page.selectOption(
      'form[action="/manage/firmware/rollouts"] select[name=unitId]',
      unitId,
    );
    tech.page.once('dialog', (d) => void d.accept());
    await Promise.all([
      tech.page.waitForURL((u) => u.pathname.startsWith('/firmware/rollouts/')),
      tech.page.click('form[action="/manage/firmware/rollouts"] button[type=submit]'),
    ]);
    expect(await tech.page.locator('h1').innerText()).toContain('2.0.0');
    const fw = await pool.query<{ action: string; actor_role: string }>(
      `SELECT action, actor_role FROM audit_log WHERE action IN ('firmware.upload', 'firmware.approve', 'firmware.rollout_create') ORDER BY seq`,
    );
    expect(fw.rows).toEqual([
      { action: 'firmware.upload', actor_role: 'technician' },
      { action: 'firmware.approve', actor_role: 'admin' },
      { action: 'firmware.rollout_create', actor_role: 'technician' },
    ]);

    // A rule's thresholds.
    await tech.page.goto(`${gw.apiUrl}/manage/rules`);
    const rule = tech.page.locator('form[data-rule="biodigester.ph.low"]');
    await rule.locator('input[name=warn]').fill('6.4');
    await rule.locator('input[name=critical]').fill('6.0');
    await rule.locator('input[name=clear]').fill('6.6');
    await rule.locator('button').click();
    await tech.page.getByText('Rule biodigester.ph.low saved.').waitFor();
    const saved = await pool.query(
      `SELECT warn, critical, clear, enabled FROM alert_rules WHERE id = 'biodigester.ph.low'`,
    );
    expect(saved.rows[0]).toEqual({ warn: 6.4, critical: 6, clear: 6.6, enabled: true });

    // People: an invitation whose setup link is shown once, then the person's unit.
    await admin.page.goto(`${gw.apiUrl}/manage/users`);
    await admin.page.fill('input[name=username]', 'km-new');
    await admin.page.fill('input[name=displayName]', 'New Kitchen Manager');
    await admin.page.selectOption('select[name=role]', 'kitchen_manager');
    await admin.page.click('form[action="/manage/users"] button[type=submit]');
    const link = await admin.page.locator('[data-link]').inputValue();
    expect(link).toMatch(/\/setup\?token=/);
    await checkPage(admin, 'users after invitation');
    await admin.page.reload();
    expect(await admin.page.content()).not.toContain(new URL(link).searchParams.get('token')!);
    await admin.page.locator('tr[data-user="km-new"] a').click();
    await admin.page.locator(`input[name=unitIds][value="${unitId}"]`).check();
    await admin.page.click('form.units button[type=submit]');
    await admin.page.getByText('Units saved.').waitFor();
    const assigned = await pool.query(
      `SELECT 1 FROM user_unit_assignments a JOIN users u ON u.id = a.user_id WHERE u.username = 'km-new' AND a.unit_id = $1`,
      [unitId],
    );
    expect(assigned.rowCount).toBe(1);
  }, 240_000);

  it('every new page fits a phone and a desktop, passes axe and the CSP, in English and Swahili', async () => {
    const users = await call<{ users: { id: string; username: string }[] }>('GET', '/users');
    const techId = users.users.find((u) => u.username === 'tech-one')!.id;
    for (const size of [PHONE, DESKTOP]) {
      const tech = await signIn('tech-one', size);
      for (const url of [
        '/manage',
        '/manage/devices/new',
        '/manage/quarantine',
        '/manage/rules',
        '/firmware',
      ]) {
        await tech.page.goto(`${gw.apiUrl}${url}`);
        await checkPage(tech, `technician ${url} at ${size.width}`);
      }
      const admin = await signIn('tech-admin', size, 'sw-KE');
      for (const url of ['/manage', '/manage/users', `/manage/users/${techId}`]) {
        await admin.page.goto(`${gw.apiUrl}${url}`);
        await checkPage(admin, `admin (sw) ${url} at ${size.width}`);
      }
      await admin.page.goto(`${gw.apiUrl}/manage`);
      expect(await admin.page.locator('h1').innerText()).toBe('Simamia');
    }
  }, 240_000);
});
