import { beforeAll, describe, expect, it } from 'vitest';
import {
  createApiHarness,
  createUserWithPassword,
  systemActor,
  type ApiHarness,
} from '../test/api-harness.ts';

let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({
    throttle: { windowMs: 15 * 60_000, maxFailuresPerAccount: 3, maxFailuresPerIp: 1000 },
  });
});

function cookieFrom(res: { headers: Record<string, unknown> }): string {
  const set = res.headers['set-cookie'];
  const first = (Array.isArray(set) ? set[0] : set) as string;
  return first.split(';')[0]!;
}

async function login(username: string, password: string) {
  const res = await h.app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    payload: { username, password },
  });
  return res;
}

describe('sessions', () => {
  it('signs in with a cookie that is signed, HttpOnly, Secure, SameSite=Strict', async () => {
    await createUserWithPassword(h, { username: 'alice', role: 'technician' });
    const res = await login('alice', 'correct horse battery staple');
    expect(res.statusCode).toBe(200);
    const set = String(res.headers['set-cookie']);
    expect(set).toMatch(/^__Host-thamani_session=[^;]+\.[^;]+;/);
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/Secure/);
    expect(set).toMatch(/SameSite=Strict/);
    const me = await h.app.inject({
      method: 'GET',
      url: '/api/v1/auth/session',
      headers: { cookie: cookieFrom(res) },
    });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({
      role: 'technician',
      kind: 'user',
      csrfToken: res.json().csrfToken,
    });
  });
});

describe('session expiry', () => {
  it('ends a session after the idle limit, and keeps it alive while used', async () => {
    await createUserWithPassword(h, { username: 'idle', role: 'collector' });
    const cookie = cookieFrom(await login('idle', 'correct horse battery staple'));
    const me = () =>
      h.app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: { cookie } });
    h.clock.advance(29 * 60_000);
    expect((await me()).statusCode).toBe(200); // activity restarts the idle timer
    h.clock.advance(29 * 60_000);
    expect((await me()).statusCode).toBe(200);
    h.clock.advance(30 * 60_000 + 1);
    const expired = await me();
    expect(expired.statusCode).toBe(401);
    expect(expired.json().code).toBe('UNAUTHENTICATED');
    h.clock.advance(-30 * 60_000); // even back inside the window, an expired session stays dead
    expect((await me()).statusCode).toBe(401);
  });

  it('ends a session at the absolute limit however active it is', async () => {
    await createUserWithPassword(h, { username: 'busy', role: 'collector' });
    const cookie = cookieFrom(await login('busy', 'correct horse battery staple'));
    for (let hour = 0; hour < 12; hour += 0.4) {
      h.clock.advance(24 * 60_000);
      const res = await h.app.inject({
        method: 'GET',
        url: '/api/v1/auth/session',
        headers: { cookie },
      });
      if (res.statusCode !== 200) {
        expect(hour).toBeGreaterThanOrEqual(11.5);
        return;
      }
    }
    const res = await h.app.inject({
      method: 'GET',
      url: '/api/v1/auth/session',
      headers: { cookie },
    });
    expect(res.statusCode).toBe(401);
  });

  it('refuses a cookie whose signature was tampered with', async () => {
    await createUserWithPassword(h, { username: 'tamper', role: 'collector' });
    const cookie = cookieFrom(await login('tamper', 'correct horse battery staple'));
    const [name, value] = cookie.split('=') as [string, string];
    const forged = `${name}=${value.slice(0, -2)}${value.endsWith('AA') ? 'BB' : 'AA'}`;
    expect(
      (
        await h.app.inject({
          method: 'GET',
          url: '/api/v1/auth/session',
          headers: { cookie: forged },
        })
      ).statusCode,
    ).toBe(401);
  });
});

describe('login throttling', () => {
  it('locks an account after repeated failures, even for the right password, and says when to retry', async () => {
    await createUserWithPassword(h, { username: 'bob', role: 'auditor' });
    for (let i = 0; i < 3; i++)
      expect((await login('bob', 'wrong password!!')).json().code).toBe('INVALID_CREDENTIALS');
    const locked = await login('bob', 'correct horse battery staple');
    expect(locked.statusCode).toBe(429);
    expect(locked.json().code).toBe('LOGIN_THROTTLED');
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    h.clock.advance(15 * 60_000 + 1000);
    expect((await login('bob', 'correct horse battery staple')).statusCode).toBe(200);
  });

  it('records failed and throttled sign-ins as security events', async () => {
    // Throttled attempts are recorded through the aggregating security-event sink: asynchronously.
    const auditor = { authorization: `Bearer ${await h.tokenFor('auditor')}` };
    await expect
      .poll(
        async () =>
          (
            await h.app.inject({
              method: 'GET',
              url: '/api/v1/audit?action=security.login_throttled',
              headers: auditor,
            })
          ).json<{ entries: unknown[] }>().entries.length,
        { timeout: 30_000 },
      )
      .toBeGreaterThan(0);
  });
});

describe('CSRF', () => {
  it('rejects a state-changing cookie request without the token, accepts it with the token', async () => {
    await createUserWithPassword(h, { username: 'carol', role: 'admin' });
    const res = await login('carol', 'correct horse battery staple');
    const cookie = cookieFrom(res);
    const payload = { username: 'dave', displayName: 'Dave', role: 'collector' };
    const without = await h.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: { cookie },
      payload,
    });
    expect(without.statusCode).toBe(403);
    expect(without.json().code).toBe('CSRF_FAILED');
    const wrong = await h.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: { cookie, 'x-csrf-token': 'x'.repeat(43) },
      payload,
    });
    expect(wrong.json().code).toBe('CSRF_FAILED');
    const withToken = await h.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: { cookie, 'x-csrf-token': res.json().csrfToken },
      payload,
    });
    expect(withToken.statusCode).toBe(201);
  });

  it('needs no CSRF token for bearer tokens (browsers never send them on their own)', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: { authorization: `Bearer ${await h.tokenFor('admin')}` },
      payload: { username: 'erin', displayName: 'Erin', role: 'collector' },
    });
    expect(res.statusCode).toBe(201);
  });
});

describe('setup and reset links', () => {
  it('are single-use and time-limited, and a new password ends existing sessions', async () => {
    const admin = { authorization: `Bearer ${await h.tokenFor('admin')}` };
    const created = await h.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: admin,
      payload: { username: 'frank', displayName: 'Frank', role: 'kitchen_manager' },
    });
    const token = new URL(created.json().setupLink).searchParams.get('token')!;
    expect(
      (
        await h.app.inject({
          method: 'POST',
          url: '/api/v1/auth/password',
          payload: { token, password: 'short' },
        })
      ).json().code,
    ).toBe('WEAK_PASSWORD');
    expect(
      (
        await h.app.inject({
          method: 'POST',
          url: '/api/v1/auth/password',
          payload: { token, password: 'a long enough password' },
        })
      ).statusCode,
    ).toBe(200);
    const again = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/password',
      payload: { token, password: 'another long password' },
    });
    expect(again.json().code).toBe('LINK_INVALID');
    const cookie = cookieFrom(await login('frank', 'a long enough password'));

    const link = await h.app.inject({
      method: 'POST',
      url: `/api/v1/users/${created.json().user.id}/reset-link`,
      headers: admin,
    });
    const resetToken = new URL(link.json().link).searchParams.get('token')!;
    h.clock.advance(61 * 60_000);
    expect(
      (
        await h.app.inject({
          method: 'POST',
          url: '/api/v1/auth/password',
          payload: { token: resetToken, password: 'a new long password' },
        })
      ).json().code,
    ).toBe('LINK_INVALID');
    const link2 = await h.app.inject({
      method: 'POST',
      url: `/api/v1/users/${created.json().user.id}/reset-link`,
      headers: admin,
    });
    const token2 = new URL(link2.json().link).searchParams.get('token')!;
    expect(
      (
        await h.app.inject({
          method: 'POST',
          url: '/api/v1/auth/password',
          payload: { token: token2, password: 'a new long password' },
        })
      ).statusCode,
    ).toBe(200);
    expect(
      (await h.app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: { cookie } }))
        .statusCode,
    ).toBe(401);
  });

  it('stores passwords only as salted scrypt hashes', async () => {
    const { rows } = await h.t.database.pool.query(
      `SELECT password_hash FROM users WHERE username = 'frank'`,
    );
    expect(rows[0].password_hash).toMatch(
      /^scrypt\$ln=\d+,r=8,p=1\$[A-Za-z0-9+/=]{20,}\$[A-Za-z0-9+/=]{40,}$/,
    );
    expect(rows[0].password_hash).not.toContain('a new long password');
  });
});

describe('disabling and API tokens', () => {
  it('a disabled user loses their session at once; a revoked token stops working', async () => {
    const admin = { authorization: `Bearer ${await h.tokenFor('admin')}` };
    const { user } = await createUserWithPassword(h, { username: 'gina', role: 'technician' });
    const cookie = cookieFrom(await login('gina', 'correct horse battery staple'));
    await h.app.inject({
      method: 'PATCH',
      url: `/api/v1/users/${user.id}`,
      headers: admin,
      payload: { disabled: true },
    });
    expect(
      (await h.app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: { cookie } }))
        .statusCode,
    ).toBe(401);
    expect((await login('gina', 'correct horse battery staple')).statusCode).toBe(401);

    const made = await h.app.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      headers: admin,
      payload: { name: 'sim', role: 'technician' },
    });
    expect(made.json().token).toMatch(/^thm_/);
    const bearer = { authorization: `Bearer ${made.json().token}` };
    expect(
      (await h.app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: bearer })).json()
        .role,
    ).toBe('technician');
    expect(
      (
        await h.app.inject({
          method: 'DELETE',
          url: `/api/v1/tokens/${made.json().id}`,
          headers: admin,
        })
      ).statusCode,
    ).toBe(204);
    expect(
      (await h.app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: bearer }))
        .statusCode,
    ).toBe(401);
    const { rows } = await h.t.database.pool.query(
      `SELECT token_hash FROM api_tokens WHERE id = $1`,
      [made.json().id],
    );
    expect(rows[0].token_hash).toHaveLength(32);
  });
});

describe('password policy at the API (NIST SP 800-63B-4)', () => {
  it('refuses `aaaaaaaaaaaa` for an admin, and the admin’s own name, through the setup link; accepts a passphrase', async () => {
    const { setupLink } = await h.users.create(
      { username: 'njeri', displayName: 'Njeri Wambui', role: 'admin' },
      systemActor,
    );
    const token = new URL(setupLink).searchParams.get('token')!;
    for (const password of [
      'aaaaaaaaaaaa',
      'aaaaaaaaaaaaaaaaaaaa',
      'njeriwambui2024!',
      'thamani2024thamani',
      'password12345678',
    ]) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/api/v1/auth/password',
        payload: { token, password },
      });
      expect([res.statusCode, res.json().code], password).toEqual([400, 'WEAK_PASSWORD']);
    }
    const page = await h.app.inject({
      method: 'POST',
      url: '/setup',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `token=${token}&password=aaaaaaaaaaaaaaaa`,
    });
    expect(page.statusCode).toBe(400);
    expect(page.body).toContain('too easy to guess');
    expect(
      (
        await h.app.inject({
          method: 'POST',
          url: '/api/v1/auth/password',
          payload: { token, password: 'mango tamarind kettle drizzle' },
        })
      ).statusCode,
    ).toBe(200);
  });
});
