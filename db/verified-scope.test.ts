import fc from 'fast-check';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { covers, roles, type Role } from '../auth/permissions.ts';
import { verifyAuditChain } from '../audit/index.ts';
import { testAuditPublicKeys } from '../test/audit-key.ts';
import {
  createApiHarness,
  createUserWithPassword,
  systemActor,
  type ApiHarness,
} from '../test/api-harness.ts';

/**
 * Issue 17 §3, as an attacker holding the API role's database password would try it: raw SQL
 * over the API role's own login, with the variables the old scope trusted set by hand.
 */
let h: ApiHarness;
let unitA: string;
let unitB: string;
const sessions = new Map<Role, string>();
const userIds = new Map<Role, string>();
const anon = { actorId: 'anonymous', actorRole: 'anonymous', ip: '127.0.0.1' };
/** What each role sees of the two devices (site A's dev-a, site B's dev-b). */
const expectedDevices: Record<Role, string[]> = {
  admin: ['dev-a', 'dev-b'],
  technician: ['dev-a', 'dev-b'],
  auditor: ['dev-a', 'dev-b'],
  kitchen_manager: ['dev-a'],
  collector: [],
};

beforeAll(async () => {
  h = await createApiHarness();
  const owner = h.t.database.pool;
  const { rows: sites } = await owner.query(
    `INSERT INTO sites (name) VALUES ('Site A'), ('Site B') RETURNING id`,
  );
  const { rows: units } = await owner.query(
    `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', 'bio A'), ($2, 'biodigester', 'bio B'), ($1, 'collection_point', 'cp A') RETURNING id`,
    [sites[0].id, sites[1].id],
  );
  [unitA, unitB] = [units[0].id, units[1].id];
  await owner.query(
    `INSERT INTO devices (id, unit_id, kind) VALUES ('dev-a', $1, 'biodigester'), ('dev-b', $2, 'biodigester')`,
    [unitA, unitB],
  );
  for (const role of roles) {
    const { user, password } = await createUserWithPassword(h, {
      username: `u-${role.replace('_', '-')}`,
      role,
    });
    userIds.set(role, user.id);
    if (role === 'kitchen_manager' || role === 'collector')
      await h.users.assignUnits(user.id, [unitA, units[2].id], systemActor);
    sessions.set(
      role,
      (await h.sessions.login({ username: `u-${role.replace('_', '-')}`, password }, anon))
        .sessionId,
    );
  }
}, 120_000);

async function asApi<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: h.apiUrl });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const devicesSeen = async (c: pg.Client) =>
  (await c.query<{ id: string }>(`SELECT id FROM devices ORDER BY id`)).rows.map((r) => r.id);
const forge = (c: pg.Client, role: string, actor: string) =>
  c.query(`SELECT set_config('thamani.role', $1, true), set_config('thamani.actor_id', $2, true)`, [
    role,
    actor,
  ]);
const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (err: Error & { code?: string }) => err.code ?? err.message,
  );

describe('the scope of a transaction', () => {
  it('cannot be claimed by setting the variables by hand: no verified scope reads nothing', async () => {
    const seen = await asApi(async (c) => {
      await c.query('BEGIN');
      await forge(c, 'admin', userIds.get('admin')!);
      await c.query(`SET thamani.role = 'system'`);
      const r = {
        devices: await devicesSeen(c),
        sites: (await c.query(`SELECT id FROM sites`)).rowCount,
        readings: (await c.query(`SELECT 1 FROM scoped_readings`)).rowCount,
      };
      await c.query('ROLLBACK');
      return r;
    });
    expect(seen).toEqual({ devices: [], sites: 0, readings: 0 });
  });

  it('is only what the credential verified, whatever is set by hand afterwards (every role × forged role)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...roles),
        fc.constantFrom(...roles, 'system', ''),
        fc.boolean(),
        async (role, forged, forgeFirst) => {
          const seen = await asApi(async (c) => {
            await c.query('BEGIN');
            if (forgeFirst) await forge(c, forged, userIds.get('admin')!);
            await c.query(`SELECT thamani_enter_session($1)`, [sessions.get(role)]);
            if (!forgeFirst) await forge(c, forged, userIds.get('admin')!);
            const d = await devicesSeen(c);
            await c.query('ROLLBACK');
            return d;
          });
          expect(seen).toEqual(expectedDevices[role]);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('dies with its transaction and never crosses to another connection, even under parallel load', async () => {
    // A scope entered and committed: the next transaction on the same connection has none.
    const later = await asApi(async (c) => {
      await c.query(`SELECT thamani_enter_session($1)`, [sessions.get('admin')]); // its own (implicit) transaction
      await c.query('BEGIN');
      const d = await devicesSeen(c);
      await c.query('COMMIT');
      return d;
    });
    expect(later).toEqual([]);
    // Twenty connections at once, each holding a different role's scope while the others read.
    const picks = Array.from({ length: 20 }, (_, i) => roles[i % roles.length]!);
    const results = await Promise.all(
      picks.map((role) =>
        asApi(async (c) => {
          await c.query('BEGIN');
          await c.query(`SELECT thamani_enter_session($1)`, [sessions.get(role)]);
          await c.query('SELECT pg_sleep(0.05)');
          const d = await devicesSeen(c);
          await c.query('COMMIT');
          return [role, d] as const;
        }),
      ),
    );
    for (const [role, d] of results) expect(d, role).toEqual(expectedDevices[role]);
  });

  it('is refused to a revoked session and to a made-up secret', async () => {
    const got = await asApi(async (c) => [
      (await c.query<{ r: string | null }>(`SELECT thamani_enter_session('not a session') AS r`))
        .rows[0]!.r,
      (await c.query<{ r: string | null }>(`SELECT thamani_enter_api_token('thm_made_up') AS r`))
        .rows[0]!.r,
    ]);
    expect(got).toEqual([null, null]);
  });
});

describe('people, assignments and credentials, by plain SQL as the API role', () => {
  it('are refused, with or without a verified admin scope', async () => {
    const manager = userIds.get('kitchen_manager')!;
    const attempts = {
      promote: `UPDATE users SET role = 'admin' WHERE id = '${manager}'`,
      addUser: `INSERT INTO users (username, display_name, role) VALUES ('mallory', 'M', 'admin')`,
      assign: `INSERT INTO user_unit_assignments (user_id, unit_id) VALUES ('${manager}', '${unitB}')`,
      unassign: `DELETE FROM user_unit_assignments WHERE user_id = '${manager}'`,
      token: `INSERT INTO api_tokens (name, token_hash, role, created_by, expires_at) VALUES ('x', sha256('thm_x'), 'admin', 'x', now() + interval '1 day')`,
      unrevoke: `UPDATE api_tokens SET revoked_at = NULL, role = 'admin'`,
      session: `INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at) SELECT sha256('s'), id, 'c', now(), now(), now() + interval '1 day' FROM users WHERE role = 'admin'`,
      link: `INSERT INTO user_tokens (token_hash, user_id, purpose, expires_at) VALUES (sha256('l'), '${manager}', 'reset', now() + interval '1 day')`,
      enrolment: `INSERT INTO enrolment_tokens (device_id, token_hash, expires_at, created_by) VALUES ('dev-b', sha256('e'), now() + interval '1 day', 'x')`,
      scopeTable: `INSERT INTO thamani_scope (backend_pid, xact, actor_id, role, via) VALUES (pg_backend_pid(), pg_current_xact_id(), 'x', 'admin', 'session')`,
      trusted: `SELECT thamani_enter_trusted('x', 'admin')`,
      setScope: `SELECT thamani_set_scope('x', 'admin', 'session')`,
    };
    for (const session of [undefined, sessions.get('admin')]) {
      const outcome = await asApi(async (c) => {
        const out: Record<string, string> = {};
        for (const [name, text] of Object.entries(attempts)) {
          await c.query('BEGIN');
          if (session) await c.query(`SELECT thamani_enter_session($1)`, [session]);
          out[name] = await code(c.query(text));
          await c.query('ROLLBACK');
        }
        return out;
      });
      expect(outcome, session ? 'admin scope' : 'no scope').toEqual(
        Object.fromEntries(Object.keys(attempts).map((k) => [k, '42501'])),
      );
    }
    expect(
      (await h.t.database.pool.query(`SELECT role FROM users WHERE id = $1`, [manager])).rows[0]
        .role,
    ).toBe('kitchen_manager');
  });

  it("a kitchen manager's verified scope cannot promote itself, widen its units or mint a wider token through the definer functions", async () => {
    const me = userIds.get('kitchen_manager')!;
    const calls = {
      promote: `SELECT thamani_user_update('${me}', '{"role":"admin"}')`,
      units: `SELECT thamani_user_set_units('${me}', ARRAY['${unitA}', '${unitB}']::uuid[])`,
      token: `SELECT thamani_api_token_insert('t', 'admin', sha256('thm_t'), now() + interval '1 day')`,
      ownToken: `SELECT thamani_api_token_insert('t', 'kitchen_manager', sha256('thm_t'), now() + interval '1 day')`,
      newUser: `SELECT thamani_user_insert('mallory', 'M', NULL, 'admin')`,
      revoke: `SELECT thamani_api_tokens_revoke(ARRAY(SELECT id FROM api_tokens))`,
      erase: `SELECT thamani_user_erase('${userIds.get('admin')!}')`,
      link: `SELECT thamani_user_link('${userIds.get('admin')!}', 'reset', sha256('l'), now() + interval '1 day')`,
      enrol: `SELECT thamani_enrolment_token_insert('dev-a', sha256('e'), now() + interval '1 day')`,
    };
    const outcome = await asApi(async (c) => {
      const out: Record<string, string> = {};
      for (const [name, text] of Object.entries(calls)) {
        await c.query('BEGIN');
        await c.query(`SELECT thamani_enter_session($1)`, [sessions.get('kitchen_manager')]);
        await forge(c, 'admin', userIds.get('admin')!);
        out[name] = await code(c.query(text));
        await c.query('ROLLBACK');
      }
      return out;
    });
    expect(outcome).toEqual(Object.fromEntries(Object.keys(calls).map((k) => [k, '42501'])));
  });

  it('each definer function admits exactly the verified roles it names, for every role (exhaustive)', async () => {
    const victim = (await createUserWithPassword(h, { username: 'victim', role: 'collector' })).user
      .id;
    const calls: Record<string, { sql: string; roles: Role[] }> = {
      update: {
        sql: `SELECT thamani_user_update('${victim}', '{"role":"auditor"}')`,
        roles: ['admin'],
      },
      units: {
        sql: `SELECT thamani_user_set_units('${victim}', ARRAY['${unitB}']::uuid[])`,
        roles: ['admin'],
      },
      insert: {
        sql: `SELECT thamani_user_insert('new-user', 'N', NULL, 'auditor')`,
        roles: ['admin'],
      },
      erase: { sql: `SELECT thamani_user_erase('${victim}')`, roles: ['admin'] },
      link: {
        sql: `SELECT thamani_user_link('${victim}', 'reset', sha256('l2'), now() + interval '1 hour')`,
        roles: ['admin'],
      },
      revoke: {
        sql: `SELECT thamani_api_tokens_revoke(ARRAY(SELECT id FROM api_tokens))`,
        roles: ['admin'],
      },
      adminToken: {
        sql: `SELECT thamani_api_token_insert('t', 'admin', sha256('thm_t2'), now() + interval '1 day')`,
        roles: ['admin'],
      },
      enrolment: {
        sql: `SELECT thamani_enrolment_token_insert('dev-a', sha256('e2'), now() + interval '1 day')`,
        roles: ['admin', 'technician'],
      },
    };
    for (const role of roles) {
      const outcome = await asApi(async (c) => {
        const out: Record<string, string> = {};
        for (const [name, call] of Object.entries(calls)) {
          await c.query('BEGIN');
          await c.query(`SELECT thamani_enter_session($1)`, [sessions.get(role)]);
          out[name] = await code(c.query(call.sql));
          await c.query('ROLLBACK');
        }
        return out;
      });
      expect(outcome, role).toEqual(
        Object.fromEntries(
          Object.entries(calls).map(([k, call]) => [k, call.roles.includes(role) ? 'ok' : '42501']),
        ),
      );
    }
  });

  it('an enrolment token opens the enrolment scope once: a spent, unknown or expired one opens nothing', async () => {
    const owner = h.t.database.pool;
    await owner.query(
      `INSERT INTO enrolment_tokens (device_id, token_hash, expires_at, created_by) VALUES ('dev-a', sha256('enr_live'), now() + interval '1 hour', 't'), ('dev-a', sha256('enr_spent'), now() + interval '1 hour', 't'), ('dev-a', sha256('enr_old'), now() - interval '1 second', 't')`,
    );
    await owner.query(
      `UPDATE enrolment_tokens SET used_at = now() WHERE token_hash = sha256('enr_spent')`,
    );
    const seen = await asApi(async (c) => {
      const out: Record<string, unknown> = {};
      for (const secret of ['enr_live', 'enr_spent', 'enr_old', 'enr_unknown']) {
        await c.query('BEGIN');
        const { rows } = await c.query<{ r: string | null }>(
          `SELECT thamani_enter_enrolment($1) AS r`,
          [secret],
        );
        out[secret] = [rows[0]!.r, (await devicesSeen(c)).length];
        await c.query('ROLLBACK');
      }
      return out;
    });
    expect(seen).toEqual({
      enr_live: ['system', 2],
      enr_spent: [null, 0],
      enr_old: [null, 0],
      enr_unknown: [null, 0],
    });
  });

  it('an admin scope changing a role without an audit entry in the same transaction is refused at commit', async () => {
    const manager = userIds.get('kitchen_manager')!;
    const result = await asApi(async (c) => {
      await c.query('BEGIN');
      await c.query(`SELECT thamani_enter_session($1)`, [sessions.get('admin')]);
      await c.query(`SELECT thamani_user_update($1, '{"role":"admin"}')`, [manager]);
      return code(c.query('COMMIT'));
    });
    expect(result).toBe('42501');
    expect(
      (await h.t.database.pool.query(`SELECT role FROM users WHERE id = $1`, [manager])).rows[0]
        .role,
    ).toBe('kitchen_manager');
  });

  it('the same change through the API, by an admin, is made and audited', async () => {
    const target = (await createUserWithPassword(h, { username: 'promoted', role: 'collector' }))
      .user.id;
    const res = await h.app.inject({
      method: 'PATCH',
      url: `/api/v1/users/${target}`,
      headers: { authorization: `Bearer ${await h.tokenFor('admin')}` },
      payload: { role: 'technician' },
    });
    expect(res.statusCode).toBe(200);
    const { rows } = await h.t.database.pool.query(
      `SELECT action, actor_id FROM audit_log WHERE target_id = $1 ORDER BY seq DESC LIMIT 1`,
      [target],
    );
    expect(rows[0]).toMatchObject({ action: 'user.update' });
    expect(rows[0].actor_id).toMatch(/^token:/);
  });

  it('the database knows the same role cover as auth/permissions.ts, for every pair', async () => {
    const { rows } = await h.t.database.pool.query<{ h: Role; r: Role; ok: boolean }>(
      `SELECT h, r, thamani_role_covers(h, r) AS ok FROM unnest($1::text[]) h, unnest($1::text[]) r`,
      [roles],
    );
    for (const row of rows) expect(row.ok, `${row.h} covers ${row.r}`).toBe(covers(row.h, row.r));
    expect(rows).toHaveLength(roles.length ** 2);
  });

  // Last: it leaves a forged entry in this database's chain.
  it('an audit entry forged by the API role to pass the commit check is caught by verification', async () => {
    const target = (
      await createUserWithPassword(h, { username: 'forged-target', role: 'collector' })
    ).user.id;
    const admin = userIds.get('admin')!;
    const committed = await asApi(async (c) => {
      await c.query('BEGIN');
      await c.query(`SELECT thamani_enter_session($1)`, [sessions.get('admin')]);
      await c.query(`SELECT thamani_user_update($1, '{"role":"admin"}')`, [target]);
      // Correctly chained, but the API role holds no signing key: the signature is made up.
      await c.query(
        `INSERT INTO audit_log (seq, key_id, at, actor_id, actor_role, action, target_type, target_id, prev_hash, hash, signature)
         SELECT seq + 1, key_id, now(), $1, 'admin', 'user.update', 'user', $2, hash, sha256(hash), sha256('not a signature')
         FROM audit_log ORDER BY seq DESC LIMIT 1`,
        [admin, target],
      );
      return code(c.query('COMMIT'));
    });
    expect(committed).toBe('ok');
    const head = (
      await h.t.database.pool.query<{ seq: string }>(`SELECT max(seq) AS seq FROM audit_log`)
    ).rows[0]!.seq;
    const result = await verifyAuditChain(h.t.database.db, { publicKeys: testAuditPublicKeys });
    expect(result.ok).toBe(false);
    expect(result.firstBroken?.seq).toBe(Number(head));
  });
});
