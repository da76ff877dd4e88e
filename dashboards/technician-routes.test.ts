import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { can, roles, type Permission, type Role } from '../auth/permissions.ts';
import { createUserWithPassword, systemActor, type ApiHarness } from '../test/api-harness.ts';
import { createFullGateway } from '../test/full-gateway.ts';
import { testLogger } from '../test/db.ts';
import { createAlertService } from './alert-service.ts';

/**
 * The technician's forms as routes (app.inject, the gateway's real routes on a real database):
 * a role refused by auth/permissions.ts gets 403 on each form whatever units it is assigned and
 * whichever unit the form is about, and nothing is recorded; a role that may act is never
 * refused, on any unit (technicians and admins are not scoped to units: docs/security-model.md).
 * A form sent with the session cookie but without its CSRF token is refused and changes nothing.
 */
const PASSWORD = 'correct horse battery staple';
let h: ApiHarness;
const unitIds: string[] = [];
let userId = '';
const sha = 'cd'.repeat(32);

beforeAll(async () => {
  // Every route `thamani start` mounts, on one database.
  h = await createFullGateway();
  const owner = h.t;
  const q = owner.database.pool;
  await createAlertService({ pool: q, logger: testLogger, notify: false }).ensureDefaults();
  const site = (
    await q.query<{ id: string }>(`INSERT INTO sites (name) VALUES ('Tech') RETURNING id`)
  ).rows[0]!.id;
  for (const [i, kind] of (['biodigester', 'collection_point', 'biodigester'] as const).entries()) {
    const unit = (
      await q.query<{ id: string }>(
        `INSERT INTO units (site_id, kind, name) VALUES ($1, $2, $3) RETURNING id`,
        [site, kind, `Unit ${i}`],
      )
    ).rows[0]!.id;
    unitIds.push(unit);
    await q.query(`INSERT INTO devices (id, unit_id, kind, status) VALUES ($1, $2, $3, 'active')`, [
      `dev-${i}`,
      unit,
      kind,
    ]);
    await q.query(
      `INSERT INTO certificates (serial, device_id, fingerprint_sha256, not_before, not_after, status, issued_by, pem)
       VALUES ($1, $2, $3, now() - interval '1 day', now() + interval '300 days', 'active', 'admin', 'x')`,
      [`0${i}aa`, `dev-${i}`, `fp-${i}`],
    );
    await q.query(
      `INSERT INTO quarantine (device_id, unit_id, received_at, topic, payload, payload_size, reasons)
       VALUES ($1, $2, now(), $3, '\\x7b7d', 2, '[{"field":"x","code":"SCHEMA","message":"m"}]')`,
      [`dev-${i}`, unit, `devices/dev-${i}/telemetry`],
    );
  }
  await q.query(
    `INSERT INTO firmware_images (sha256, device_kind, version, size, image, uploaded_by) VALUES ('${sha}', 'biodigester', '9.9.9', 4, '\\x00010203', 'someone-else')`,
  );
  userId = (await createUserWithPassword(h, { username: 'target-user', role: 'collector' })).user
    .id;
}, 120_000);

/** The unit's device (dev-<index>), for forms about one device. */
const deviceOf = (unit: string) => `dev-${unitIds.indexOf(unit)}`;

interface Form {
  permission: Permission;
  url: (unit: string) => string;
  body: (unit: string) => Record<string, string>;
}
const forms: Form[] = [
  { permission: 'devices:write', url: () => '/manage/devices', body: (u) => ({ unit: u }) },
  {
    permission: 'enrolment:create',
    url: (u) => `/manage/devices/${deviceOf(u)}/enrolment-token`,
    body: () => ({}),
  },
  {
    permission: 'certificates:issue',
    url: (u) => `/manage/devices/${deviceOf(u)}/rotate`,
    body: () => ({}),
  },
  {
    permission: 'certificates:revoke',
    url: (u) => `/manage/devices/${deviceOf(u)}/revoke`,
    body: (u) => ({ serial: `0${unitIds.indexOf(u)}aa`, reason: 'superseded' }),
  },
  {
    permission: 'devices:write',
    url: (u) => `/manage/devices/${deviceOf(u)}/suspend`,
    body: () => ({}),
  },
  {
    permission: 'devices:write',
    url: (u) => `/manage/devices/${deviceOf(u)}/activate`,
    body: () => ({}),
  },
  {
    permission: 'quarantine:replay',
    url: () => '/manage/quarantine/bulk',
    body: () => ({ action: 'discard', ids: '1,2,3' }),
  },
  {
    permission: 'alerts:configure',
    url: () => '/manage/rules/biodigester.ph.low',
    body: () => ({ warn: '6.8', critical: '6.5', clear: '6.9', enabled: 'on' }),
  },
  {
    permission: 'alerts:configure',
    url: (u) => `/manage/rules/units/${u}/biodigester.ph.low`,
    body: () => ({ warn: '6.7', critical: '6.5', clear: '6.9', enabled: 'on' }),
  },
  {
    permission: 'alerts:configure',
    url: (u) => `/manage/rules/units/${u}/biodigester.ph.low/remove`,
    body: () => ({}),
  },
  {
    permission: 'users:write',
    url: () => '/manage/users',
    body: () => ({
      username: `u${randomBytes(4).toString('hex')}`,
      displayName: 'N',
      role: 'collector',
    }),
  },
  {
    permission: 'users:write',
    url: () => `/manage/users/${userId}`,
    body: () => ({ role: 'collector' }),
  },
  {
    permission: 'users:write',
    url: () => `/manage/users/${userId}/units`,
    body: (u) => ({ unitIds: u }),
  },
  { permission: 'users:write', url: () => `/manage/users/${userId}/reset-link`, body: () => ({}) },
  {
    permission: 'firmware:approve',
    url: () => `/manage/firmware/${sha}/approve`,
    body: () => ({}),
  },
  {
    permission: 'firmware:write',
    url: () => '/manage/firmware/rollouts',
    body: (u) => ({ sha256: sha, unitId: u }),
  },
];

const pages = [
  '/manage',
  '/manage/devices/new',
  '/manage/quarantine',
  '/manage/quarantine/1',
  '/manage/rules',
  '/manage/rules/units/UNIT',
  '/manage/users',
  `/manage/users/USER`,
];
const pagePermission: Record<string, Permission> = {
  '/manage': 'devices:write',
  '/manage/devices/new': 'enrolment:create',
  '/manage/quarantine': 'quarantine:read',
  '/manage/quarantine/1': 'quarantine:read',
  '/manage/rules': 'alerts:configure',
  '/manage/rules/units/UNIT': 'alerts:configure',
  '/manage/users': 'users:read',
  '/manage/users/USER': 'users:read',
};

/** A person of this role, assigned these units, signed in: their cookie and CSRF token. */
async function signedIn(role: Role, units: string[]) {
  const username = `p${randomBytes(5).toString('hex')}`;
  const { user } = await createUserWithPassword(h, { username, role, password: PASSWORD });
  if (units.length && (role === 'kitchen_manager' || role === 'collector'))
    await h.users.assignUnits(user.id, units, systemActor);
  const res = await h.app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    payload: { username, password: PASSWORD },
  });
  expect(res.statusCode).toBe(200);
  const set = res.headers['set-cookie'];
  const cookie = ((Array.isArray(set) ? set[0] : set) as string).split(';')[0]!;
  return { id: user.id, cookie, csrf: res.json<{ csrfToken: string }>().csrfToken };
}

const auditActions = async (actorId: string) =>
  (
    await h.t.database.pool.query<{ action: string; target_id: string }>(
      `SELECT action, target_id FROM audit_log WHERE actor_id = $1 ORDER BY seq`,
      [actorId],
    )
  ).rows.map((r) => `${r.action} ${r.target_id}`);

const auditCount = async (actorId: string) =>
  Number(
    (
      await h.t.database.pool.query<{ n: string }>(
        // Refusals themselves are recorded, aggregated and flushed in the background
        // (security.http_forbidden, api/refusal-events.ts): counted apart from what a form did.
        `SELECT count(*) AS n FROM audit_log WHERE actor_id = $1 AND action NOT LIKE 'session.%' AND action NOT LIKE 'auth.%' AND action NOT LIKE 'security.%'`,
        [actorId],
      )
    ).rows[0]!.n,
  );

describe('technician forms and pages: who may use them', () => {
  it('each role gets exactly what auth/permissions.ts gives it, on every unit, whatever units it is assigned', async () => {
    const people = new Map<string, Awaited<ReturnType<typeof signedIn>>>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...roles),
        fc.subarray([0, 1, 2]),
        fc.nat(forms.length - 1),
        fc.nat(2),
        async (role, assigned, formIndex, target) => {
          const key = `${role}:${assigned.join(',')}`;
          let p = people.get(key);
          if (!p)
            people.set(
              key,
              (p = await signedIn(
                role,
                assigned.map((i) => unitIds[i]!),
              )),
            );
          const form = forms[formIndex]!;
          const unit = unitIds[target]!;
          const before = await auditCount(p.id);
          const res = await h.app.inject({
            method: 'POST',
            url: form.url(unit),
            headers: {
              cookie: p.cookie,
              'x-csrf-token': p.csrf,
              'content-type': 'application/x-www-form-urlencoded',
            },
            payload: new URLSearchParams(form.body(unit)).toString(),
          });
          const label = `${role} [${assigned.join(',')}] POST ${form.url(unit)} -> ${res.statusCode} ${res.body.slice(0, 200)}`;
          if (!can(role, form.permission)) {
            expect(res.statusCode, label).toBe(403);
            expect(res.headers['content-type'], label).toMatch(/^text\/html/);
            expect(
              await auditCount(p.id),
              `${label}: nothing recorded (${(await auditActions(p.id)).join(', ')})`,
            ).toBe(before);
          } else {
            expect([401, 403], label).not.toContain(res.statusCode);
            expect(res.statusCode, label).toBeLessThan(500);
            if (res.statusCode < 400)
              expect(await auditCount(p.id), `${label}: audited`).toBeGreaterThan(before);
          }
        },
      ),
      { numRuns: 60 },
    );
    // Every successful form recorded its audit entry (api/audit-guard.ts counts those that did not).
    expect((await h.auditMissing.get()).values.reduce((n, v) => n + v.value, 0)).toBe(0);
  }, 300_000);

  it('pages: refused with a page to roles without the permission, shown to the others', async () => {
    for (const role of roles) {
      const p = await signedIn(role, [unitIds[0]!]);
      for (const page of pages) {
        const url = page.replace('USER', userId).replace('UNIT', unitIds[0]!);
        const res = await h.app.inject({ method: 'GET', url, headers: { cookie: p.cookie } });
        const label = `${role} GET ${url} -> ${res.statusCode}`;
        expect(res.headers['content-type'], label).toMatch(/^text\/html/);
        expect(res.statusCode, label).toBe(can(role, pagePermission[page]!) ? 200 : 403);
      }
    }
  }, 120_000);

  it('refuses every form sent with the session cookie but without its CSRF token, or with a wrong one, and changes nothing', async () => {
    const admin = await signedIn('admin', []);
    const posts = h.app.routePermissions.filter(
      (r) => r.method === 'POST' && r.url.startsWith('/manage/'),
    );
    expect(posts.length).toBeGreaterThanOrEqual(forms.length + 2);
    for (const route of posts) {
      const url = route.url
        .replace(
          ':id',
          route.url.includes('users')
            ? userId
            : route.url.includes('rollouts')
              ? '00000000-0000-4000-8000-000000000000'
              : 'dev-0',
        )
        .replace(':sha256', sha);
      for (const csrf of [undefined, 'x'.repeat(43)]) {
        const before = await auditCount(admin.id);
        const res = await h.app.inject({
          method: 'POST',
          url,
          headers: {
            cookie: admin.cookie,
            'content-type': 'application/x-www-form-urlencoded',
            ...(csrf ? { 'x-csrf-token': csrf } : {}),
          },
          payload: 'action=discard&ids=1',
        });
        const label = `POST ${url} csrf=${csrf ?? 'none'} -> ${res.statusCode}`;
        expect(res.statusCode, label).toBe(403);
        expect(res.body, label).toContain('Reload the page');
        expect(await auditCount(admin.id), label).toBe(before);
      }
    }
  }, 120_000);
});

describe('technician forms: what they do', () => {
  it('registering shows the enrolment token and its QR code in the answer only; the token is stored hashed and works once', async () => {
    const tech = await signedIn('technician', []);
    const res = await h.app.inject({
      method: 'POST',
      url: '/manage/devices',
      headers: {
        cookie: tech.cookie,
        'x-csrf-token': tech.csrf,
        'content-type': 'application/x-www-form-urlencoded',
      },
      payload: new URLSearchParams({ unit: unitIds[0]!, id: 'bd-form-1' }).toString(),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toContain('no-store');
    const token = /value="(enr_[A-Za-z0-9_-]+)"/.exec(res.body)?.[1];
    expect(token).toBeDefined();
    expect(res.body).toMatch(
      /<svg role="img" aria-label="[^"]*bd-form-1[^"]*" xmlns="http:\/\/www.w3.org\/2000\/svg"/,
    );
    expect(res.body).not.toMatch(/<svg[^>]*style=|<style/);
    const again = await h.app.inject({
      method: 'GET',
      url: '/manage/devices/new',
      headers: { cookie: tech.cookie },
    });
    expect(again.body).not.toContain(token!);
    const stored = await h.t.database.pool.query(
      `SELECT 1 FROM enrolment_tokens WHERE device_id = 'bd-form-1'`,
    );
    expect(stored.rowCount).toBe(1);
    expect(
      JSON.stringify((await h.t.database.pool.query(`SELECT * FROM enrolment_tokens`)).rows),
    ).not.toContain(token!.slice(4));
  });

  it('a device id taken already answers with the registry’s error on a page, and nothing is half-made', async () => {
    const tech = await signedIn('technician', []);
    const res = await h.app.inject({
      method: 'POST',
      url: '/manage/devices',
      headers: {
        cookie: tech.cookie,
        'x-csrf-token': tech.csrf,
        'content-type': 'application/x-www-form-urlencoded',
      },
      payload: new URLSearchParams({ unit: unitIds[0]!, id: 'dev-0' }).toString(),
    });
    expect(res.statusCode).toBe(409);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain('DEVICE_EXISTS');
  });
});

describe('alert thresholds refused on the page', () => {
  it('says why in the reader’s language, for a kind’s rule and for one unit’s own, and saves nothing', async () => {
    const tech = await signedIn('technician', []);
    const post = (url: string, lang: string) =>
      h.app.inject({
        method: 'POST',
        url,
        headers: {
          cookie: tech.cookie,
          'x-csrf-token': tech.csrf,
          'accept-language': lang,
          'content-type': 'application/x-www-form-urlencoded',
        },
        // "pH low": clear below warn would close an alert the same value opens.
        payload: new URLSearchParams({ warn: '6.8', critical: '6.5', clear: '6.6' }).toString(),
      });
    const state = async () => [
      (
        await h.t.database.pool.query(
          `SELECT warn, clear FROM alert_rules WHERE id = 'biodigester.ph.low'`,
        )
      ).rows,
      (
        await h.t.database.pool.query(`SELECT * FROM alert_rule_overrides WHERE unit_id = $1`, [
          unitIds[0],
        ])
      ).rows,
    ];
    const before = await state();
    for (const url of [
      '/manage/rules/biodigester.ph.low',
      `/manage/rules/units/${unitIds[0]!}/biodigester.ph.low`,
    ]) {
      const sw = await post(url, 'sw');
      expect(sw.statusCode, url).toBe(400);
      expect(sw.body, url).toContain('Haikuhifadhiwa');
      expect(sw.body, url).toContain('Thamani ya kurejea lazima iwe ≥ thamani ya onyo');
      const en = await post(url, 'en');
      expect(en.body, url).toContain('The clear value must be ≥ the warning value');
    }
    expect(await state()).toEqual(before);
  });
});
