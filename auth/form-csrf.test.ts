import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { roles, type Role } from './permissions.ts';
import { CSRF_FIELD } from './authenticator.ts';
import { createUserWithPassword, systemActor, type ApiHarness } from '../test/api-harness.ts';
import { createFullGateway } from '../test/full-gateway.ts';

/**
 * Forms work without JavaScript (issue 19): a plain HTML form shows the session's CSRF token in
 * a hidden `_csrf` field instead of the header the scripts set. The protection must stay as
 * strong: a cookie-carrying POST whose body lacks the token, or shows another session's token,
 * or any other string, is refused and changes nothing; only the session's own token passes.
 * And every POST form any role's pages render carries the field (enumerated, not listed).
 */
const PASSWORD = 'correct horse battery staple';
let h: ApiHarness;
let unitId = '';
let targetUser = '';

beforeAll(async () => {
  h = await createFullGateway();
  const q = h.t.database.pool;
  const site = (
    await q.query<{ id: string }>(`INSERT INTO sites (name) VALUES ('Csrf') RETURNING id`)
  ).rows[0]!.id;
  unitId = (
    await q.query<{ id: string }>(
      `INSERT INTO units (site_id, kind, name) VALUES ($1, 'collection_point', 'Bin') RETURNING id`,
      [site],
    )
  ).rows[0]!.id;
  await q.query(
    `INSERT INTO devices (id, unit_id, kind, status) VALUES ('cp-csrf', $1, 'collection_point', 'active')`,
    [unitId],
  );
  targetUser = (await createUserWithPassword(h, { username: 'csrf-target', role: 'collector' }))
    .user.id;
}, 120_000);

async function signedIn(role: Role) {
  const username = `c${randomBytes(5).toString('hex')}`;
  const { user } = await createUserWithPassword(h, { username, role, password: PASSWORD });
  if (role === 'kitchen_manager' || role === 'collector')
    await h.users.assignUnits(user.id, [unitId], systemActor);
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

const deviceStatus = async () =>
  (
    await h.t.database.pool.query<{ status: string }>(
      `SELECT status FROM devices WHERE id = 'cp-csrf'`,
    )
  ).rows[0]!.status;

describe('forms without JavaScript: the CSRF token in a hidden field', () => {
  it('a form body without the session’s own token is refused and changes nothing; with it the form works', async () => {
    const admin = await signedIn('admin');
    const other = await signedIn('admin');
    type Variant = 'none' | 'empty' | 'other-session' | 'random' | 'prefix' | 'own';
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Variant>('none', 'empty', 'other-session', 'random', 'prefix', 'own'),
        fc.string({ minLength: 1, maxLength: 60 }),
        fc.boolean(),
        async (variant, random, suspend) => {
          const token = {
            none: undefined,
            empty: '',
            'other-session': other.csrf,
            random,
            prefix: admin.csrf.slice(0, -1),
            own: admin.csrf,
          }[variant];
          const before = await deviceStatus();
          const body = new URLSearchParams(token === undefined ? {} : { [CSRF_FIELD]: token });
          const res = await h.app.inject({
            method: 'POST',
            url: `/manage/devices/cp-csrf/${suspend ? 'suspend' : 'activate'}`,
            headers: {
              cookie: admin.cookie,
              'content-type': 'application/x-www-form-urlencoded',
              // A real browser's same-origin form post.
              'sec-fetch-site': 'same-origin',
            },
            payload: body.toString(),
          });
          const label = `${variant} ${suspend ? 'suspend' : 'activate'} -> ${res.statusCode}`;
          if (variant === 'own') {
            expect(res.statusCode, label).toBeLessThan(400);
            expect(await deviceStatus(), label).toBe(suspend ? 'suspended' : 'active');
          } else {
            expect(res.statusCode, label).toBe(403);
            expect(res.body, label).toContain('Form expired');
            expect(await deviceStatus(), label).toBe(before);
          }
        },
      ),
      { numRuns: 40 },
    );
  }, 120_000);

  it('the token field does not let a cross-site page post (Sec-Fetch-Site), even with a valid token', async () => {
    const admin = await signedIn('admin');
    const before = await deviceStatus();
    const res = await h.app.inject({
      method: 'POST',
      url: '/manage/devices/cp-csrf/suspend',
      headers: {
        cookie: admin.cookie,
        'content-type': 'application/x-www-form-urlencoded',
        'sec-fetch-site': 'cross-site',
        origin: 'https://evil.example',
      },
      payload: new URLSearchParams({ [CSRF_FIELD]: admin.csrf }).toString(),
    });
    expect(res.statusCode).toBe(403);
    expect(res.body).toContain('CROSS_SITE_REQUEST');
    expect(await deviceStatus()).toBe(before);
  });

  it('a JSON body cannot stand in for the header: the token is read from form bodies only', async () => {
    const admin = await signedIn('admin');
    const res = await h.app.inject({
      method: 'PUT',
      url: '/api/v1/users/me/language',
      headers: { cookie: admin.cookie, 'content-type': 'application/json' },
      payload: { language: 'sw', [CSRF_FIELD]: admin.csrf },
    });
    expect(res.statusCode).toBe(403);
    expect(res.json<{ code: string }>().code).toBe('CSRF_FAILED');
  });

  it('every POST form on every page each role can open carries the session’s token in the hidden field', async () => {
    const gets = h.app.routePermissions.filter(
      (r) =>
        r.method === 'GET' &&
        !r.url.startsWith('/api/') &&
        !r.url.startsWith('/assets') &&
        !r.url.startsWith('/docs') &&
        !r.url.includes('*'),
    );
    let forms = 0;
    for (const role of roles) {
      const p = await signedIn(role);
      for (const route of gets) {
        const url = route.url
          .replace(':id', route.url.includes('users') ? targetUser : unitId)
          .replace(/:[a-zA-Z]+/g, '1');
        const res = await h.app.inject({ method: 'GET', url, headers: { cookie: p.cookie } });
        if (!String(res.headers['content-type']).startsWith('text/html')) continue;
        for (const [tag] of res.body.matchAll(/<form\b[^>]*>(?:<input type="hidden"[^>]*>)?/g)) {
          if (!/method="post"/i.test(tag)) {
            // A form without method="post" is a GET filter: it must change nothing, so it
            // needs no token; a script-only form (no method, no action) would fail without JS.
            expect(tag, `${role} ${url}: a form a plain browser cannot send`).toMatch(
              /method="get"|action="/,
            );
            continue;
          }
          // Forms of the sign-in pages: no session exists yet, so no token can; login CSRF is
          // stopped by the origin guard (api/origin-guard.ts) and the one-time token of the link.
          if (/action="\/(login|setup|reset|verifier\/session)"/.test(tag)) continue;
          forms++;
          expect(tag, `${role} ${url}`).toContain(
            `<input type="hidden" name="${CSRF_FIELD}" value="${p.csrf}">`,
          );
        }
      }
    }
    expect(forms).toBeGreaterThan(10);
  }, 300_000);
});
