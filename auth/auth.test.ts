import { beforeAll, describe, expect, it } from 'vitest';
import { createApiHarness, createUserWithPassword, type ApiHarness } from '../test/api-harness.ts';

let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({ throttle: { windowMs: 15 * 60_000, maxFailuresPerAccount: 3, maxFailuresPerIp: 1000 } });
});

function cookieFrom(res: { headers: Record<string, unknown> }): string {
  const set = res.headers['set-cookie'];
  const first = (Array.isArray(set) ? set[0] : set) as string;
  return first.split(';')[0]!;
}

async function login(username: string, password: string) {
  const res = await h.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password } });
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
    const me = await h.app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: { cookie: cookieFrom(res) } });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ role: 'technician', kind: 'user', csrfToken: res.json().csrfToken });
  });
});
