import { beforeAll, describe, expect, it } from 'vitest';
import {
  createApiHarness,
  createUserWithPassword,
  systemActor,
  type ApiHarness,
} from '../test/api-harness.ts';
import { covers, roles, type Role } from './permissions.ts';

/**
 * Access that must not outlive its owner (issue 17 §2): an API token acts for the user who made
 * it and dies, at once, with that user's disabling, erasure or loss of the role it carries.
 */
let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({ apiTokenDefaultDays: 30, apiTokenMaxDays: 60 });
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const asAdmin = async () => bearer(await h.tokenFor('admin'));
const whoAmI = (token: string) =>
  h.app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: bearer(token) });

/** An admin signs in and makes a token through the API, as the attack in the issue did. */
async function adminWithToken(username: string, role: Role = 'admin') {
  const { user, password } = await createUserWithPassword(h, { username, role: 'admin' });
  const login = await h.app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    payload: { username, password },
  });
  const cookie = String(login.headers['set-cookie']).split(';')[0]!;
  const made = await h.app.inject({
    method: 'POST',
    url: '/api/v1/tokens',
    headers: { cookie, 'x-csrf-token': login.json().csrfToken },
    payload: { name: `${username} automation`, role },
  });
  expect(made.statusCode).toBe(201);
  expect(made.json().ownerId).toBe(user.id);
  return { user, token: made.json().token as string, tokenId: made.json().id as string };
}

/** Fires a burst of requests in parallel; every one must be refused. */
async function allRefused(token: string, n = 8): Promise<void> {
  const results = await Promise.all(
    Array.from({ length: n }, () =>
      h.app.inject({ method: 'GET', url: '/api/v1/users', headers: bearer(token) }),
    ),
  );
  expect(results.map((r) => r.statusCode)).toEqual(Array(n).fill(401));
}

describe('API tokens die with their owner', () => {
  it('a disabled admin’s token gets 401 at once (and cannot create an admin)', async () => {
    const { user, token } = await adminWithToken('tok-disable');
    expect((await whoAmI(token)).json().role).toBe('admin');
    const off = await h.app.inject({
      method: 'PATCH',
      url: `/api/v1/users/${user.id}`,
      headers: await asAdmin(),
      payload: { disabled: true },
    });
    expect(off.statusCode).toBe(200);
    await allRefused(token);
    const attempt = await h.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: bearer(token),
      payload: { username: 'mallory', displayName: 'M', role: 'admin' },
    });
    expect(attempt.statusCode).toBe(401);
    // Re-enabling the user does not bring the token back: it was revoked with the disabling.
    await h.app.inject({
      method: 'PATCH',
      url: `/api/v1/users/${user.id}`,
      headers: await asAdmin(),
      payload: { disabled: false },
    });
    expect((await whoAmI(token)).statusCode).toBe(401);
  });

  it('an erased admin’s token gets 401 at once, and so does a token that token made', async () => {
    const { user, token } = await adminWithToken('tok-erase');
    const child = await h.app.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      headers: bearer(token),
      payload: { name: 'child', role: 'technician' },
    });
    expect(child.json().ownerId).toBe(user.id);
    expect((await whoAmI(child.json().token)).statusCode).toBe(200);
    expect(
      (
        await h.app.inject({
          method: 'POST',
          url: `/api/v1/users/${user.id}/erase`,
          headers: await asAdmin(),
        })
      ).statusCode,
    ).toBe(200);
    await allRefused(token);
    await allRefused(child.json().token);
  });

  it('a role change revokes the tokens the new role does not cover and keeps the others', async () => {
    const { user, token: adminToken } = await adminWithToken('tok-demote');
    const { token: techToken } = await h.users.createApiToken(
      { name: 'tech', role: 'technician' },
      { ...systemActor, actorId: user.id, actorRole: 'admin' },
    );
    await h.app.inject({
      method: 'PATCH',
      url: `/api/v1/users/${user.id}`,
      headers: await asAdmin(),
      payload: { role: 'technician' },
    });
    await allRefused(adminToken);
    expect((await whoAmI(techToken)).json().role).toBe('technician');
    const list = (
      await h.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: await asAdmin() })
    ).json().tokens as { name: string; revoked: boolean }[];
    expect(list.find((t) => t.name === 'tok-demote automation')?.revoked).toBe(true);
    expect(list.find((t) => t.name === 'tech')?.revoked).toBe(false);
  });

  it('is checked at every request against the owner’s current role, even when nothing revoked it (every role pair)', async () => {
    // The role is changed behind the service's back (plain SQL as the owner of the database):
    // only the per-request check in the token lookup can refuse.
    const { user } = await createUserWithPassword(h, { username: 'tok-matrix', role: 'admin' });
    const tokens = new Map<Role, string>();
    for (const role of roles)
      tokens.set(
        role,
        (
          await h.users.createApiToken(
            { name: `m-${role}`, role },
            { ...systemActor, actorId: user.id, actorRole: 'admin' },
          )
        ).token,
      );
    for (const ownerRole of roles) {
      await h.t.database.pool.query(`UPDATE users SET role = $2 WHERE id = $1`, [
        user.id,
        ownerRole,
      ]);
      for (const role of roles) {
        const res = await whoAmI(tokens.get(role)!);
        expect({ ownerRole, role, status: res.statusCode }).toEqual({
          ownerRole,
          role,
          status: covers(ownerRole, role) ? 200 : 401,
        });
      }
    }
    await h.t.database.pool.query(`UPDATE users SET disabled = true WHERE id = $1`, [user.id]);
    await allRefused(tokens.get('collector')!);
  });

  it('a user may not hand out a token wider than their own role', async () => {
    const { user } = await createUserWithPassword(h, {
      username: 'tok-narrow',
      role: 'technician',
    });
    await expect(
      h.users.createApiToken(
        { name: 'x', role: 'admin' },
        { ...systemActor, actorId: user.id, actorRole: 'technician' },
      ),
    ).rejects.toMatchObject({ code: 'API_TOKEN_ROLE_TOO_WIDE' });
    expect(
      (
        await h.users.createApiToken(
          { name: 'z', role: 'collector' },
          { ...systemActor, actorId: user.id, actorRole: 'technician' },
        )
      ).ownerId,
    ).toBe(user.id);
    await expect(
      h.users.createApiToken(
        { name: 'y', role: 'auditor' },
        { ...systemActor, actorId: user.id, actorRole: 'technician' },
      ),
    ).rejects.toMatchObject({ code: 'API_TOKEN_ROLE_TOO_WIDE' });
  });
});

describe('API token expiry and last use', () => {
  it('expires by default after the configured days; longer than the maximum is refused', async () => {
    const made = await h.app.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      headers: await asAdmin(),
      payload: { name: 'default-expiry', role: 'auditor' },
    });
    expect(new Date(made.json().expiresAt).getTime()).toBe(h.clock.now.getTime() + 30 * 86_400_000);
    const tooLong = await h.app.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      headers: await asAdmin(),
      payload: { name: 'forever', role: 'auditor', expiresInDays: 61 },
    });
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json().code).toBe('API_TOKEN_LIFETIME_TOO_LONG');
    expect((await whoAmI(made.json().token)).statusCode).toBe(200);
    const adminToken = await h.tokenFor('admin');
    h.clock.advance(30 * 86_400_000);
    expect((await whoAmI(made.json().token)).statusCode).toBe(401);
    h.clock.advance(-30 * 86_400_000);
    expect((await whoAmI(adminToken)).statusCode).toBe(200);
  });

  it('records when a token was last used, for admins to see', async () => {
    const made = await h.users.createApiToken(
      { name: 'last-used', role: 'collector' },
      systemActor,
    );
    const listed = async () =>
      (
        (
          await h.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: await asAdmin() })
        ).json().tokens as { id: string; lastUsedAt: string | null }[]
      ).find((t) => t.id === made.id);
    expect((await listed())?.lastUsedAt).toBeNull();
    h.clock.advance(60_000);
    await whoAmI(made.token);
    expect((await listed())?.lastUsedAt).toBe(h.clock.now.toISOString());
  });
});
