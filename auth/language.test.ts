import { beforeAll, describe, expect, it } from 'vitest';
import { createDashboardQueries } from '../dashboards/dashboard-repo.ts';
import { dashboardPages } from '../dashboards/page-routes.ts';
import { timeseriesInfo } from '../db/timeseries.ts';
import {
  createApiHarness,
  createUserWithPassword,
  systemActor,
  type ApiHarness,
} from '../test/api-harness.ts';
import { createTestDatabase } from '../test/db.ts';

/**
 * A user's language (users.language): chosen by the user in the header (PUT /api/v1/users/me/language,
 * their own only, with the CSRF header), or by an admin (API, CLI); pages follow it over the
 * browser's, and follow the browser when there is none.
 */

let h: ApiHarness;
const form = { 'content-type': 'application/x-www-form-urlencoded' };

beforeAll(async () => {
  const t = await createTestDatabase();
  const queries = createDashboardQueries({ mode: (await timeseriesInfo(t.database.pool)).mode });
  h = await createApiHarness(
    { routes: ({ db }) => [{ plugin: dashboardPages({ db, queries }), root: true }] },
    { t },
  );
});

async function signIn(username: string, role: 'admin' | 'collector' = 'collector') {
  const { user, password } = await createUserWithPassword(h, { username, role });
  const res = await h.app.inject({
    method: 'POST',
    url: '/login',
    headers: form,
    payload: new URLSearchParams({ username, password }).toString(),
  });
  const cookie = String(res.headers['set-cookie']).split(';')[0]!;
  const page = await h.app.inject({ url: '/alerts', headers: { cookie } });
  const csrf = /name="csrf-token" content="([^"]+)"/.exec(page.body)![1]!;
  return { user, cookie, csrf };
}

const langOfPage = async (cookie: string, acceptLanguage: string) =>
  /<html lang="(\w+)"/.exec(
    (await h.app.inject({ url: '/alerts', headers: { cookie, 'accept-language': acceptLanguage } }))
      .body,
  )?.[1];

describe('a user’s language', () => {
  it('without a choice follows the browser; once chosen, wins over it; "browser" clears it (audited)', async () => {
    const me = await signIn('amani');
    expect(await langOfPage(me.cookie, 'sw-KE,sw;q=0.9')).toBe('sw');
    expect(await langOfPage(me.cookie, 'en-GB')).toBe('en');
    const set = (language: string, headers: Record<string, string> = {}) =>
      h.app.inject({
        method: 'PUT',
        url: '/api/v1/users/me/language',
        headers: { cookie: me.cookie, 'x-csrf-token': me.csrf, ...headers },
        payload: { language: language === 'browser' ? null : language },
      });
    expect((await set('sw')).statusCode).toBe(204);
    expect(await langOfPage(me.cookie, 'en-GB')).toBe('sw');
    const page = await h.app.inject({ url: '/alerts', headers: { cookie: me.cookie } });
    expect(page.body).toContain('Tahadhari');
    expect(page.body).toMatch(/<option value="sw" lang="sw" selected>Kiswahili<\/option>/);
    expect((await set('browser')).statusCode).toBe(204);
    expect(await langOfPage(me.cookie, 'en-GB')).toBe('en');
    const { rows } = await h.t.database.pool.query<{ actor_id: string; target_id: string }>(
      `SELECT actor_id, target_id, after FROM audit_log WHERE action = 'user.language' ORDER BY id`,
    );
    expect(rows.map((r) => [r.actor_id, r.target_id])).toEqual([
      [me.user.id, me.user.id],
      [me.user.id, me.user.id],
    ]);
  });

  it('changes only the signed-in user’s own, refuses a language outside the catalogue, no CSRF header, or an API token', async () => {
    const me = await signIn('baraka');
    const other = await signIn('chiku');
    const post = (headers: Record<string, string>, payload: unknown) =>
      h.app.inject({
        method: 'PUT',
        url: '/api/v1/users/me/language',
        headers,
        payload: payload as object,
      });
    expect(
      (await post({ cookie: me.cookie, 'x-csrf-token': me.csrf }, { language: 'fr' })).statusCode,
    ).toBe(400);
    const noCsrf = await post({ cookie: me.cookie }, { language: 'sw' });
    expect([noCsrf.statusCode, noCsrf.json<{ code: string }>().code]).toEqual([403, 'CSRF_FAILED']);
    const token = await post(
      { authorization: `Bearer ${await h.tokenFor('collector')}` },
      { language: 'sw' },
    );
    expect([token.statusCode, token.json<{ code: string }>().code]).toEqual([400, 'NOT_A_USER']);
    expect(
      (await post({ cookie: me.cookie, 'x-csrf-token': me.csrf }, { language: 'sw' })).statusCode,
    ).toBe(204);
    expect(await langOfPage(other.cookie, 'en')).toBe('en');
    const { rows } = await h.t.database.pool.query<{ username: string; language: string | null }>(
      `SELECT username, language FROM users WHERE username IN ('baraka', 'chiku') ORDER BY username`,
    );
    expect(rows).toEqual([
      { username: 'baraka', language: 'sw' },
      { username: 'chiku', language: null },
    ]);
  });

  it('an admin sets it on create and on update through the API; the column takes nothing else', async () => {
    const admin = { authorization: `Bearer ${await h.tokenFor('admin')}` };
    const made = await h.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: admin,
      payload: {
        username: 'dalila',
        displayName: 'Dalila',
        role: 'kitchen_manager',
        language: 'sw',
      },
    });
    expect(made.statusCode).toBe(201);
    const id = made.json<{ user: { id: string; language: string } }>().user.id;
    expect(made.json<{ user: { language: string } }>().user.language).toBe('sw');
    const changed = await h.app.inject({
      method: 'PATCH',
      url: `/api/v1/users/${id}`,
      headers: admin,
      payload: { language: 'en' },
    });
    expect(changed.json<{ language: string }>().language).toBe('en');
    const refused = await h.app.inject({
      method: 'PATCH',
      url: `/api/v1/users/${id}`,
      headers: admin,
      payload: { language: 'de' },
    });
    expect(refused.statusCode).toBe(400);
    await expect(h.users.update(id, { language: 'de' as 'en' }, systemActor)).rejects.toMatchObject(
      { cause: { constraint: 'users_language_known' } },
    );
  });
});
