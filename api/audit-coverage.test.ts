import type { FastifyPluginAsync } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApiHarness, createUserWithPassword, type ApiHarness } from '../test/api-harness.ts';

/** A route that changes state and forgets to audit: the guard must notice it. */
const forgetful: FastifyPluginAsync = (app) => {
  app.post('/test/unaudited', { preHandler: app.requirePermission('devices:write') }, () => ({
    ok: true,
  }));
  return Promise.resolve();
};

let h: ApiHarness;
let admin: { authorization: string };
beforeAll(async () => {
  h = await createApiHarness({ routes: () => [{ plugin: forgetful }] });
  admin = { authorization: `Bearer ${await h.tokenFor('admin')}` };
});

async function missing(): Promise<number> {
  return (await h.auditMissing.get()).values.reduce((n, v) => n + v.value, 0);
}

describe('every administrative action is audited', () => {
  it('records user and token administration with actor, IP, request id and before/after', async () => {
    const call = async (
      method: 'POST' | 'PATCH' | 'PUT' | 'DELETE',
      url: string,
      payload?: object,
    ) => {
      const res = await h.app.inject({
        method,
        url,
        headers: admin,
        ...(payload ? { payload } : {}),
        remoteAddress: '10.1.2.3',
      });
      expect(res.statusCode, `${method} ${url}: ${res.body}`).toBeLessThan(300);
      return res;
    };
    const created = await call('POST', '/api/v1/users', {
      username: 'hana',
      displayName: 'Hana',
      email: 'hana@example.org',
      role: 'collector',
    });
    const id = created.json<{ user: { id: string } }>().user.id;
    await call('PATCH', `/api/v1/users/${id}`, { role: 'kitchen_manager' });
    await call('POST', `/api/v1/users/${id}/reset-link`);
    await call('PUT', `/api/v1/users/${id}/units`, { unitIds: [] });
    const token = await call('POST', '/api/v1/tokens', { name: 'ci', role: 'auditor' });
    await call('DELETE', `/api/v1/tokens/${token.json<{ id: string }>().id}`);
    await call('POST', `/api/v1/users/${id}/erase`);
    expect(await missing()).toBe(0);
    const { rows } = await h.t.database.pool.query<{
      action: string;
      actor_id: string;
      ip: string;
      before: unknown;
      after: unknown;
      request_id: string;
    }>(
      // The request's IP is kept beside the signed entry (audit_request_meta: retention, erasure).
      `SELECT action, actor_id, host(m.ip) AS ip, before, after, request_id FROM audit_log l LEFT JOIN audit_request_meta m ON m.audit_id = l.id WHERE target_id = $1 ORDER BY id`,
      [id],
    );
    expect(rows.map((r) => r.action)).toEqual([
      'user.create',
      'user.update',
      'user.reset_link',
      'user.assign_units',
      'user.erase',
    ]);
    expect(
      rows.every((r) => r.ip === '10.1.2.3' && r.actor_id.startsWith('token:') && r.request_id),
    ).toBe(true);
    expect(rows[1]).toMatchObject({
      before: { role: 'collector' },
      after: { role: 'kitchen_manager' },
    });
    // No personal fields in the immutable log, so erasure leaves nothing to rewrite there.
    expect(JSON.stringify(rows)).not.toMatch(/hana/i);
  });

  it('notices a state-changing route that records nothing', async () => {
    const before = await missing();
    expect(
      (await h.app.inject({ method: 'POST', url: '/api/v1/test/unaudited', headers: admin }))
        .statusCode,
    ).toBe(200);
    expect(await missing()).toBe(before + 1);
  });
});

describe('privacy', () => {
  it('a user exports their own account data; an erased user keeps only a pseudonymous id', async () => {
    const { user, password } = await createUserWithPassword(h, {
      username: 'ivy',
      role: 'collector',
    });
    const login = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: 'ivy', password },
    });
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const exported = await h.app.inject({
      method: 'GET',
      url: '/api/v1/me/export',
      headers: { cookie },
    });
    expect(exported.statusCode).toBe(200);
    const data = exported.json<{
      user: { username: string };
      sessions: unknown[];
      auditEntriesAsActor: { action: string }[];
    }>();
    expect(data.user.username).toBe('ivy');
    expect(data.sessions.length).toBe(1);
    expect(data.auditEntriesAsActor.map((e) => e.action)).toContain('auth.login');

    const erased = await h.app.inject({
      method: 'POST',
      url: `/api/v1/users/${user.id}/erase`,
      headers: admin,
    });
    expect(erased.json()).toMatchObject({
      id: user.id,
      username: `erased-${user.id}`,
      displayName: expect.stringMatching(/^erased user #\d+$/),
      email: null,
      disabled: true,
      erased: true,
    });
    expect(
      (await h.app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: { cookie } }))
        .statusCode,
    ).toBe(401);
    const { rows } = await h.t.database.pool.query(
      `SELECT count(*)::int AS n FROM audit_log WHERE actor_id = $1`,
      [user.id],
    );
    expect(rows[0].n).toBeGreaterThan(0);
    // Sessions (with their IPs and user agents) are gone; the whole database is searched in auth/erasure.test.ts.
    const { rows: sess } = await h.t.database.pool.query(
      `SELECT ip, user_agent FROM sessions WHERE user_id = $1`,
      [user.id],
    );
    expect(sess).toEqual([]);
  });
});
