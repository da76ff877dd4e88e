import { beforeAll, describe, expect, it } from 'vitest';
import { createApiHarness, createUserWithPassword, type ApiHarness } from '../test/api-harness.ts';
import { escapeHtml } from '../api/escape-html.ts';

let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({ probes: [{ name: 'broker', check: () => Promise.resolve(false) }] });
});

const form = { 'content-type': 'application/x-www-form-urlencoded' };

describe('server-rendered pages', () => {
  it('escapes what the user sent (no reflected XSS) and carries no script', async () => {
    const res = await h.app.inject({
      method: 'GET',
      url: `/setup?token=${encodeURIComponent('"><script>alert(1)</script>')}`,
    });
    expect(res.statusCode).toBe(200);
    expect(res.body).not.toContain('<script');
    expect(res.body).toContain('&#34;&#62;&#60;script&#62;');
    expect(escapeHtml(`<a href='x'>&`)).toBe('&#60;a href&#61;&#39;x&#39;&#62;&#38;');
  });

  it('signs in through the form: 303 with the session cookie; a wrong password re-renders with 401', async () => {
    await createUserWithPassword(h, { username: 'pat', role: 'collector' });
    const bad = await h.app.inject({
      method: 'POST',
      url: '/login',
      headers: form,
      payload: 'username=pat&password=nope',
    });
    expect(bad.statusCode).toBe(401);
    expect(bad.body).toContain('Wrong username or password');
    const ok = await h.app.inject({
      method: 'POST',
      url: '/login',
      headers: form,
      payload: `username=pat&password=${encodeURIComponent('correct horse battery staple')}`,
    });
    expect(ok.statusCode).toBe(303);
    expect(String(ok.headers['set-cookie'])).toMatch(/^__Host-thamani_session=/);
  });

  it('sets a password through the setup form once', async () => {
    const { setupLink } = await h.users.create(
      { username: 'quinn', displayName: 'Quinn', role: 'auditor' },
      { actorId: 'system', actorRole: 'system' },
    );
    const token = new URL(setupLink).searchParams.get('token')!;
    const payload = `token=${token}&password=${encodeURIComponent('twelve chars or more')}`;
    expect(
      (await h.app.inject({ method: 'POST', url: '/setup', headers: form, payload })).body,
    ).toContain('Your password is set');
    expect(
      (await h.app.inject({ method: 'POST', url: '/setup', headers: form, payload })).statusCode,
    ).toBe(400);
  });
});

describe('readiness', () => {
  it('answers 503 and names the failing probe', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ ready: false, checks: { broker: false } });
  });
});

describe('request log', () => {
  it('never contains the token of a setup or reset link', async () => {
    const { Writable } = await import('node:stream');
    const { pino } = await import('pino');
    const lines: string[] = [];
    const sink = new Writable({
      write: (chunk: Buffer, _enc, cb) => (lines.push(chunk.toString()), cb()),
    });
    const logged = await createApiHarness({ logger: pino({ level: 'info' }, sink) });
    await logged.app.inject({ method: 'GET', url: '/setup?token=SeCrEtToKeN123&x=1' });
    expect(lines.join('')).toContain('/setup?token=[redacted]&x=1');
    expect(lines.join('')).not.toContain('SeCrEtToKeN123');
  });
});
