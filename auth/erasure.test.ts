import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { escapeHtml } from '../api/escape-html.ts';
import { scopedServices } from '../api/scoped-services.ts';
import { verifyAuditChain } from '../audit/index.ts';
import { createAlertService } from '../dashboards/alert-service.ts';
import { createDashboardQueries } from '../dashboards/dashboard-repo.ts';
import { dashboardRoutes } from '../dashboards/dashboard-routes.ts';
import { createLiveHub } from '../dashboards/live-hub.ts';
import { dashboardPages } from '../dashboards/page-routes.ts';
import { deviceRoutes } from '../devices/device-routes.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { timeseriesInfo } from '../db/timeseries.ts';
import {
  createApiHarness,
  createUserWithPassword,
  systemActor,
  type ApiHarness,
} from '../test/api-harness.ts';
import { testAuditPublicKeys } from '../test/audit-key.ts';
import { createTestDatabase, testLogger } from '../test/db.ts';

/**
 * Issue 17 §4, as an auditor of the erasure would check it: a technician signs in (after one
 * wrong password), creates a site, a unit and a device, acknowledges an alert and exports her
 * data; an admin erases her. Then every column of every table that can hold text (text, varchar,
 * json, jsonb, inet, arrays, enums; bytea as UTF-8 bytes), found through information_schema and
 * read as the superuser, is searched for her name, e-mail, username, IP and user agent: nothing
 * may be left. The pages, the API and the audit log now call her "erased user #N", and the
 * signed chain still verifies. Her identity is generated (fast-check), so the check is about
 * every name, not one.
 */
let h: ApiHarness;
let superuser: pg.Client;
const PASSWORD = 'correct horse battery staple';
const ADMIN_IP = '192.0.2.1';

beforeAll(async () => {
  const t = await createTestDatabase();
  const hub = createLiveHub();
  const queries = createDashboardQueries({ mode: (await timeseriesInfo(t.database.pool)).mode });
  await createAlertService({
    pool: t.database.pool,
    logger: testLogger,
    hub,
    notify: false,
  }).ensureDefaults();
  h = await createApiHarness(
    {
      routes: ({ audit, db, authenticator }) => [
        {
          plugin: deviceRoutes({
            devices: scopedServices(db, (tx) => createDeviceService({ db: tx, audit })),
          }),
        },
        { plugin: dashboardRoutes({ db, audit, authenticator, queries, hub }) },
        { plugin: dashboardPages({ db, queries }), root: true },
      ],
    },
    { t },
  );
  superuser = new pg.Client({ connectionString: t.url });
  await superuser.connect();
  const { rows } = await superuser.query<{ su: boolean }>(
    `SELECT rolsuper AS su FROM pg_roles WHERE rolname = current_user`,
  );
  expect(rows[0]!.su).toBe(true);
  return () => superuser.end();
}, 120_000);

interface Finding {
  column: string;
  needle: string;
}

/** Every table column that can hold a string, in every schema but the catalogs. */
async function searchDatabase(needles: string[]): Promise<Finding[]> {
  const { rows: columns } = await superuser.query<{
    schema: string;
    table: string;
    column: string;
    type: string;
  }>(`
    SELECT c.table_schema AS schema, c.table_name AS table, c.column_name AS column, c.data_type AS type
      FROM information_schema.columns c
      JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
     WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema') AND c.table_schema NOT LIKE 'pg_toast%'
       AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'inet', 'cidr', 'ARRAY', 'USER-DEFINED', 'bytea', 'xml', 'tsvector')`);
  expect(columns.length).toBeGreaterThan(40);
  const findings: Finding[] = [];
  for (const c of columns) {
    const ref = `${pg.escapeIdentifier(c.schema)}.${pg.escapeIdentifier(c.table)}`;
    const col = pg.escapeIdentifier(c.column);
    for (const needle of needles) {
      const test =
        c.type === 'bytea'
          ? `position(convert_to($1, 'UTF8') IN ${col}) > 0`
          : // json text escapes non-ASCII and quotes; ->> of every string would miss nested ones, so both forms are tried.
            `(position(lower($1) IN lower(${col}::text)) > 0 OR position(lower($2) IN lower(${col}::text)) > 0)`;
      const params = c.type === 'bytea' ? [needle] : [needle, JSON.stringify(needle).slice(1, -1)];
      const { rows } = await superuser.query(`SELECT 1 FROM ${ref} WHERE ${test} LIMIT 1`, params);
      if (rows.length > 0) findings.push({ column: `${c.schema}.${c.table}.${c.column}`, needle });
    }
  }
  return findings;
}

const identity = fc.record({
  // Names as people write them: letters of any script, spaces, apostrophes, hyphens.
  name: fc.string({
    unit: fc.constantFrom(..."aeiouWNjkKmr ’'-ÉéŋÑñ李明أحمد".split('')),
    minLength: 3,
    maxLength: 20,
  }),
  host: fc.constantFrom('example.org', 'mail.example.co.ke', 'example.com'),
  ip: fc.oneof(
    fc
      .tuple(
        fc.integer({ min: 64, max: 127 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 1, max: 254 }),
      )
      .map(([b, c, d]) => `100.${b}.${c}.${d}`),
    fc
      .tuple(fc.integer({ min: 1, max: 0xffff }), fc.integer({ min: 1, max: 0xffff }))
      .map(([a, b]) => `2001:db8:${a.toString(16)}::${b.toString(16)}`),
  ),
  agent: fc.constantFrom(
    'Mozilla/5.0 (Linux; Android 14; Tecno',
    'curl/8.5',
    'Mozilla/5.0 (X11; Linux x86_64) Firefox/133',
  ),
});

async function signIn(username: string, ip: string, userAgent: string) {
  const res = await h.app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    payload: { username, password: PASSWORD },
    remoteAddress: ip,
    headers: { 'user-agent': userAgent },
  });
  expect(res.statusCode, res.body).toBe(200);
  const cookie = String([res.headers['set-cookie']].flat()[0]).split(';')[0]!;
  return {
    cookie,
    'x-csrf-token': res.json<{ csrfToken: string }>().csrfToken,
    'user-agent': userAgent,
  };
}

describe('erasure', () => {
  it('leaves no name, e-mail, username, IP or user agent of an erased technician anywhere in the database; displays say "erased user #N"', async () => {
    const { user: admin } = await createUserWithPassword(h, {
      username: 'erasure-admin',
      role: 'admin',
    });
    const adminSession = await signIn(admin.username, ADMIN_IP, 'AdminBrowser/1.0');

    await fc.assert(
      fc.asyncProperty(identity, async (who) => {
        const tag = randomBytes(4).toString('hex');
        const displayName = `${who.name.trim() || 'Wanjiku'} ${tag}`;
        const username = `tech-${tag}`;
        const email = `wanjiku.${tag}@${who.host}`;
        const userAgent = `${who.agent} ${tag}`;
        const ip = who.ip;
        const { user, setupLink } = await h.users.create(
          { username, displayName, email, role: 'technician' },
          systemActor,
        );
        await h.users.completeLink(new URL(setupLink).searchParams.get('token')!, PASSWORD, {
          ...systemActor,
          ip,
          userAgent,
        });

        // One wrong password first (audited as security.login_failed against her account), then in.
        const wrong = await h.app.inject({
          method: 'POST',
          url: '/api/v1/auth/login',
          payload: { username, password: 'not her password at all' },
          remoteAddress: ip,
          headers: { 'user-agent': userAgent },
        });
        expect(wrong.statusCode).toBe(401);
        const her = await signIn(username, ip, userAgent);
        const as = (method: 'GET' | 'POST', url: string, payload?: object) =>
          h.app.inject({ method, url, payload, remoteAddress: ip, headers: her });
        expect((await as('POST', '/api/v1/sites', { name: `Site ${tag}` })).statusCode).toBe(201);
        expect(
          (
            await as('POST', '/api/v1/units', {
              site: `Site ${tag}`,
              kind: 'biodigester',
              name: `D-${tag}`,
            })
          ).statusCode,
        ).toBe(201);
        expect(
          (await as('POST', '/api/v1/devices', { id: `bd-${tag}`, unit: `D-${tag}` })).statusCode,
        ).toBe(201);
        const {
          rows: [alert],
        } = await superuser.query<{ id: string }>(
          `INSERT INTO alerts (rule_id, device_id, unit_id, severity, opened_at)
           SELECT r.id, d.id, d.unit_id, 'warning', now() FROM devices d, alert_rules r WHERE d.id = $1 AND r.id = 'biodigester.h2s_ppm.high' RETURNING id`,
          [`bd-${tag}`],
        );
        const ack = await as('POST', `/api/v1/alerts/${alert!.id}/ack`, {
          note: 'Stirred the feed tank and opened the vent',
        });
        expect(ack.statusCode, ack.body).toBe(200);

        // Her export: the entries she made and those about her, with where her requests came from.
        const exported = (await as('GET', '/api/v1/me/export')).json<{
          auditEntriesAsActor: { action: string; ip: string | null; userAgent: string | null }[];
          auditEntriesAboutUser: { action: string; ip: string | null }[];
          alertsAcknowledged: { id: number }[];
        }>();
        expect(exported.auditEntriesAsActor.map((e) => e.action)).toEqual(
          expect.arrayContaining([
            'user.password_setup',
            'auth.login',
            'site.create',
            'unit.create',
            'device.create',
            'alert.acknowledge',
          ]),
        );
        expect(exported.auditEntriesAsActor.find((e) => e.action === 'site.create')).toMatchObject({
          ip: expect.stringMatching(/\S/),
          userAgent,
        });
        expect(exported.auditEntriesAboutUser.map((e) => e.action)).toEqual(
          expect.arrayContaining(['user.create', 'security.login_failed', 'auth.login']),
        );
        expect(
          exported.auditEntriesAboutUser.find((e) => e.action === 'user.create'),
        ).toMatchObject({ ip: null });
        expect(exported.alertsAcknowledged.map((a) => a.id)).toEqual([Number(alert!.id)]);

        // Before erasure the search finds her (it would find what is left after).
        const needles = [displayName, email, username, ip, userAgent];
        const before = await searchDatabase(needles);
        expect(before.map((f) => f.column)).toEqual(
          expect.arrayContaining([
            'public.users.display_name',
            'public.users.email',
            'public.sessions.ip',
            'public.audit_request_meta.user_agent',
          ]),
        );
        // Even before: the immutable records (signed entries, alerts) hold her id only, and so does the audit export.
        expect(before.filter((f) => /\.(audit_log|alerts)\./.test(f.column))).toEqual([]);
        const ndjson = (
          await h.app.inject({
            method: 'GET',
            url: '/api/v1/audit/export',
            headers: { cookie: adminSession.cookie },
          })
        ).body;
        expect(ndjson).toContain(user.id);
        for (const needle of needles)
          expect(ndjson.toLowerCase()).not.toContain(
            JSON.stringify(needle).slice(1, -1).toLowerCase(),
          );
        const pageBefore = await h.app.inject({
          method: 'GET',
          url: '/alerts',
          headers: { cookie: adminSession.cookie },
        });
        expect(pageBefore.body).toContain(`Acknowledged by ${escapeHtml(displayName)}`);

        const erased = await h.app.inject({
          method: 'POST',
          url: `/api/v1/users/${user.id}/erase`,
          remoteAddress: ADMIN_IP,
          headers: adminSession,
        });
        expect(erased.statusCode, erased.body).toBe(200);

        expect(await searchDatabase(needles)).toEqual([]);

        // Displays look the name up now.
        const {
          rows: [row],
        } = await superuser.query<{ number: number }>(`SELECT number FROM users WHERE id = $1`, [
          user.id,
        ]);
        const pseudonym = `erased user #${row!.number}`;
        const page = await h.app.inject({
          method: 'GET',
          url: '/alerts',
          headers: { cookie: adminSession.cookie },
        });
        expect(page.body).toContain(`Acknowledged by ${pseudonym}`);
        const alerts = (
          await h.app.inject({
            method: 'GET',
            url: '/api/v1/alerts',
            headers: { cookie: adminSession.cookie },
          })
        ).json<{ alerts: { id: number; acknowledgedBy: string; acknowledgedById: string }[] }>()
          .alerts;
        expect(alerts.find((a) => a.id === Number(alert!.id))).toMatchObject({
          acknowledgedBy: pseudonym,
          acknowledgedById: user.id,
        });
        const audit = (
          await h.app.inject({
            method: 'GET',
            url: `/api/v1/audit?actorId=${user.id}`,
            headers: { cookie: adminSession.cookie },
          })
        ).json<{ entries: { actorName: string; ip: string | null; userAgent: string | null }[] }>()
          .entries;
        expect(audit.length).toBeGreaterThanOrEqual(6);
        expect(
          audit.every((e) => e.actorName === pseudonym && e.ip === null && e.userAgent === null),
        ).toBe(true);
        // The admin's own request metadata (erasing her) is the admin's, and stays.
        const erasure = (
          await h.app.inject({
            method: 'GET',
            url: `/api/v1/audit?action=user.erase&targetId=${user.id}`,
            headers: { cookie: adminSession.cookie },
          })
        ).json<{ entries: { actorName: string; ip: string }[] }>().entries;
        expect(erasure).toEqual([
          expect.objectContaining({ actorName: 'erasure-admin', ip: ADMIN_IP }),
        ]);
      }),
      { numRuns: 3 },
    );
    expect(
      await verifyAuditChain(h.t.database.db, { publicKeys: testAuditPublicKeys, checkpoints: [] }),
    ).toMatchObject({ ok: true });
  }, 300_000);
});
