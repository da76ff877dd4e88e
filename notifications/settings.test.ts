import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createApiHarness,
  createUserWithPassword,
  systemActor,
  type ApiHarness,
} from '../test/api-harness.ts';
import { notificationRoutes } from './notification-routes.ts';
import { settingsPage } from './settings-routes.ts';

/**
 * A user's own notification settings, by the API and on the settings page: validated (E.164
 * Kenyan numbers, emails, quiet hours), stored only for the caller (row-level security), and
 * audited without the addresses themselves.
 */

let h: ApiHarness;
let session: { cookie: string; csrf: string; userId: string };

async function signIn(username: string, role: 'kitchen_manager' | 'collector' | 'admin') {
  const { user, password } = await createUserWithPassword(h, { username, role });
  const login = await h.app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    payload: { username, password },
  });
  return {
    cookie: String(login.headers['set-cookie']).split(';')[0]!,
    csrf: login.json<{ csrfToken: string }>().csrfToken,
    userId: user.id,
  };
}

const valid = {
  email: { enabled: true, address: 'wanjiru@school.example' },
  sms: { enabled: true, phone: '0712 345 678' },
  quietHours: { start: '21:30', end: '06:00' },
  criticalOverridesQuiet: false,
  summary: 'weekly' as const,
};

const put = (s: typeof session, payload: unknown) =>
  h.app.inject({
    method: 'PUT',
    url: '/api/v1/notifications/settings',
    headers: { cookie: s.cookie, 'x-csrf-token': s.csrf },
    payload: payload as Record<string, unknown>,
  });

beforeAll(async () => {
  h = await createApiHarness({
    routes: ({ db, audit }) => [
      { plugin: notificationRoutes({ db, audit }) },
      { plugin: settingsPage({ db, audit, timeZone: 'Africa/Nairobi' }), root: true },
    ],
  });
  session = await signIn('wanjiru', 'kitchen_manager');
}, 120_000);

afterAll(async () => {
  await h?.app.close();
});

describe('notification settings', () => {
  it('stores the caller’s choices, normalising the phone number to E.164, and audits the change without the addresses', async () => {
    const res = await put(session, valid);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ...valid, sms: { enabled: true, phone: '+254712345678' } });
    const got = await h.app.inject({
      method: 'GET',
      url: '/api/v1/notifications/settings',
      headers: { cookie: session.cookie },
    });
    expect(got.json()).toEqual(res.json());
    const { rows } = await h.t.database.pool.query<{
      actor_id: string;
      target_id: string;
      after: unknown;
      before: unknown;
    }>(
      `SELECT actor_id, target_id, after, before FROM audit_log WHERE action = 'notifications.settings_update'`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ actor_id: session.userId, target_id: session.userId });
    expect(rows[0]!.after).toMatchObject({
      sms: { enabled: true, phoneSet: true },
      summary: 'weekly',
      quietHours: { start: '21:30', end: '06:00' },
    });
    expect(JSON.stringify(rows[0])).not.toMatch(/712345678|wanjiru@/);
  });

  it('refuses every phone number that is not a Kenyan mobile number, and bad emails and quiet hours, with a clear code', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), fc.stringMatching(/^\+?[0-9]{6,14}$/)),
        async (phone) => {
          const res = await put(session, { ...valid, sms: { enabled: true, phone } });
          if (res.statusCode === 200)
            expect(res.json<{ sms: { phone: string } }>().sms.phone).toMatch(/^\+254[17]\d{8}$/);
          else
            expect(res.json<{ code: string }>().code).toMatch(
              /^NOTIFY_INVALID_PHONE$|^FST_ERR_VALIDATION$|^NOTIFY_ADDRESS_MISSING$/,
            );
        },
      ),
      { numRuns: 40 },
    );
    expect(
      (await put(session, { ...valid, sms: { enabled: true, phone: '+255712345678' } })).json(),
    ).toMatchObject({ code: 'NOTIFY_INVALID_PHONE' });
    expect(
      (await put(session, { ...valid, email: { enabled: true, address: 'not-an-email' } })).json(),
    ).toMatchObject({ code: 'NOTIFY_INVALID_EMAIL' });
    expect(
      (await put(session, { ...valid, sms: { enabled: true, phone: null } })).json(),
    ).toMatchObject({ code: 'NOTIFY_ADDRESS_MISSING' });
    expect(
      (await put(session, { ...valid, quietHours: { start: '25:00', end: '06:00' } })).statusCode,
    ).toBe(400);
  });

  it('keeps each user to their own settings', async () => {
    const other = await signIn('otieno', 'collector');
    expect(
      (
        await put(other, {
          ...valid,
          sms: { enabled: false, phone: null },
          email: { enabled: true, address: 'otieno@school.example' },
        })
      ).statusCode,
    ).toBe(200);
    const mine = await h.app.inject({
      method: 'GET',
      url: '/api/v1/notifications/settings',
      headers: { cookie: session.cookie },
    });
    expect(mine.json<{ email: { address: string } }>().email.address).toBe(
      'wanjiru@school.example',
    );
    // As the API role in the other user's scope, the first user's row does not exist.
    const { rows } = await h.t.database.pool.query(
      `SELECT user_id FROM notification_settings ORDER BY user_id`,
    );
    expect(rows).toHaveLength(2);
  });

  it('refuses a state change without the CSRF token', async () => {
    const res = await h.app.inject({
      method: 'PUT',
      url: '/api/v1/notifications/settings',
      headers: { cookie: session.cookie },
      payload: valid,
    });
    expect(res.statusCode).toBe(403);
  });

  it('renders the settings page with the stored values, in the reader language, with no inline script or style', async () => {
    // Its own values: the property above may have stored any valid number it generated.
    expect((await put(session, valid)).statusCode).toBe(200);
    const res = await h.app.inject({
      method: 'GET',
      url: '/settings/notifications',
      headers: { cookie: session.cookie, 'accept-language': 'sw-KE' },
    });
    expect(res.statusCode).toBe(200);
    const page = res.body;
    expect(page).toContain('<html lang="sw"');
    expect(page).toContain('<h1>Arifa</h1>');
    expect(page).toContain('value="+254712345678"');
    expect(page).toContain('value="21:30"');
    expect(page).toMatch(/name="summary" value="weekly" checked/);
    expect(page).toContain(`<meta name="csrf-token" content="${session.csrf}">`);
    expect(page).not.toMatch(/<script(?![^>]*\bsrc=)(?![^>]*type="application\/json")[^>]*>/);
    expect(page).not.toMatch(/\sstyle=|<style/);
    const js = await h.app.inject({ method: 'GET', url: '/assets/notification-settings.js' });
    expect(js.statusCode).toBe(200);
    expect(js.body).toContain("'x-csrf-token': csrf");
    const anonymous = await h.app.inject({ method: 'GET', url: '/settings/notifications' });
    expect(anonymous.statusCode).toBe(303);
  });

  it('shows the caller their notifications and what failed', async () => {
    const pool = h.t.database.pool;
    await pool.query(
      `INSERT INTO notification_outbox (idempotency_key, user_id, channel, kind, event, address, subject, body, failed_at, last_error, attempts)
       VALUES ('k1', $1, 'sms', 'alert', 'opened', '+254712345678', NULL, 'x', now(), 'Africa''s Talking 403 InvalidPhoneNumber', 1)`,
      [session.userId],
    );
    const res = await h.app.inject({
      method: 'GET',
      url: '/api/v1/notifications/deliveries',
      headers: { cookie: session.cookie },
    });
    expect(res.json()).toMatchObject({
      deliveries: [
        {
          channel: 'sms',
          status: 'failed',
          attempts: 1,
          error: "Africa's Talking 403 InvalidPhoneNumber",
        },
      ],
    });
    const page = await h.app.inject({
      method: 'GET',
      url: '/settings/notifications',
      headers: { cookie: session.cookie },
    });
    expect(page.body).toContain('InvalidPhoneNumber');
  });

  it('forgets a person’s addresses and notifications when they are erased', async () => {
    const pool = h.t.database.pool;
    const count = async () =>
      (
        await pool.query<{ n: number }>(
          `SELECT (SELECT count(*) FROM notification_settings WHERE user_id = $1) + (SELECT count(*) FROM notification_outbox WHERE user_id = $1) AS n`,
          [session.userId],
        )
      ).rows[0]!.n;
    expect(Number(await count())).toBe(2);
    await h.users.erase(session.userId, systemActor);
    expect(Number(await count())).toBe(0);
  });
});
