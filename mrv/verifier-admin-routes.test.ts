import { generateKeyPairSync } from 'node:crypto';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../audit/index.ts';
import { scopedServices } from '../api/scoped-services.ts';
import { createApiHarness, type ApiHarness } from '../test/api-harness.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { seedDigesterMonth } from '../test/mrv-fixture.ts';
import { createMrvRepo, createMrvService, monthPeriod, mrvSignerFromKey } from './index.ts';
import { verifierAdminRoutes } from './verifier-admin-routes.ts';
import { createVerifierRepo } from './verifier-repo.ts';
import { verifierRoutes } from './verifier-routes.ts';
import { createVerifierAdmin } from './verifier-service.ts';

let h: ApiHarness;
let mine: { unitId: string; reportId: string };
let other: { unitId: string; reportId: string };

beforeAll(async () => {
  h = await createApiHarness({
    routes: ({ db, audit }) => [
      {
        plugin: verifierAdminRoutes({
          admin: scopedServices(db, (tx) =>
            createVerifierAdmin({ db: tx, repo: createVerifierRepo(), audit }),
          ),
        }),
      },
      { plugin: verifierRoutes({ db, audit, timeZone: 'UTC' }), root: true },
    ],
  });
  const owner = h.t.database;
  const mrv = createMrvService({
    db: owner.db,
    repo: createMrvRepo(),
    audit: createAuditLog({ db: owner.db, signer: testAuditSigner }),
    signer: mrvSignerFromKey(generateKeyPairSync('ed25519').privateKey),
  });
  const issue = async () => {
    const fx = await seedDigesterMonth(owner.pool, { minutes: 600 });
    const r = await mrv.issue({
      unit: fx.unitId,
      ...monthPeriod('2026-10'),
      actor: { actorId: 'cli:test', actorRole: 'admin' },
    });
    return { unitId: fx.unitId, reportId: r.id };
  };
  mine = await issue();
  other = await issue();
}, 300_000);

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

/** Raw SQL as the API role, in the scope the verifier secret opens: the reports and archive rows it sees. */
async function seenBy(secret: string): Promise<{ reports: string[]; units: string[] }> {
  const c = new pg.Client({ connectionString: h.apiUrl });
  await c.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT thamani_enter_mrv_verifier($1)', [secret]);
    const reports = await c.query<{ id: string }>('SELECT id FROM mrv_reports ORDER BY id');
    const units = await c.query<{ unit_id: string }>(
      'SELECT DISTINCT unit_id FROM mrv_readings_archive ORDER BY unit_id',
    );
    return { reports: reports.rows.map((r) => r.id), units: units.rows.map((r) => r.unit_id) };
  } finally {
    await c.query('ROLLBACK').catch(() => undefined);
    await c.end();
  }
}

async function create(token: string, body: Record<string, unknown>) {
  return h.app.inject({
    method: 'POST',
    url: '/api/v1/mrv/verifiers',
    headers: bearer(token),
    payload: body,
  });
}

describe('verifier tokens over the HTTP API', () => {
  it('an admin creates one (secret shown once), it opens only its scope, and revoked it is refused at once', async () => {
    const admin = await h.tokenFor('admin');
    const res = await create(admin, { name: 'VVB audit', units: [mine.unitId], from: '2026-10' });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.headers['cache-control']).toBe('no-store');
    const made = res.json<{ secret: string; id: string; unitIds: string[]; createdBy: string }>();
    expect(made.secret).toMatch(/^thv_/);
    expect(made.unitIds).toEqual([mine.unitId]);
    expect(made.createdBy).not.toBe('system'); // the verified admin, not the owner

    // Scope, as the application's role: its digester's report and archive rows, not the other's.
    expect(await seenBy(made.secret)).toEqual({ reports: [mine.reportId], units: [mine.unitId] });
    const page = (id: string) =>
      h.app.inject({ method: 'GET', url: `/verifier/reports/${id}`, headers: bearer(made.secret) });
    expect((await page(mine.reportId)).statusCode).toBe(200);
    expect((await page(other.reportId)).statusCode).toBe(404);

    const list = await h.app.inject({
      method: 'GET',
      url: '/api/v1/mrv/verifiers',
      headers: bearer(admin),
    });
    expect(list.statusCode).toBe(200);
    expect(list.body).not.toContain(made.secret);
    expect(list.body).not.toMatch(/hash/i);
    expect(list.json<{ tokens: { id: string }[] }>().tokens.map((t) => t.id)).toContain(made.id);

    const revoke = () =>
      h.app.inject({
        method: 'POST',
        url: `/api/v1/mrv/verifiers/${made.id}/revoke`,
        headers: bearer(admin),
      });
    expect((await revoke()).statusCode).toBe(200);
    expect(await seenBy(made.secret)).toEqual({ reports: [], units: [] });
    expect((await page(mine.reportId)).statusCode).not.toBe(200);
    const again = await revoke();
    expect(again.statusCode).toBe(404);
    expect(again.json()).toMatchObject({ code: 'MRV_VERIFIER_NOT_FOUND' });

    const audited = await h.t.database.pool.query<{ action: string; target_id: string }>(
      "SELECT action, target_id FROM audit_log WHERE target_type = 'mrv_verifier' ORDER BY seq",
    );
    expect(audited.rows).toEqual([
      { action: 'mrv.verifier_create', target_id: made.id },
      { action: 'mrv.verifier_revoke', target_id: made.id },
    ]);
  });

  it('an expired token opens nothing', async () => {
    const admin = await h.tokenFor('admin');
    const made = (
      await create(admin, { name: 'short', units: [mine.unitId], from: '2026-10', days: 1 })
    ).json<{ secret: string; id: string }>();
    expect((await seenBy(made.secret)).reports).toEqual([mine.reportId]);
    // A day later (moved by the owner: the API role cannot write the table).
    await h.t.database.pool.query(
      "UPDATE mrv_verifier_tokens SET created_at = created_at - interval '2 days', expires_at = now() - interval '1 second' WHERE id = $1",
      [made.id],
    );
    expect(await seenBy(made.secret)).toEqual({ reports: [], units: [] });
  });

  it('only admins: other roles get 403, and the database refuses the functions to any other scope', async () => {
    for (const role of ['technician', 'auditor', 'kitchen_manager'] as const) {
      const token = await h.tokenFor(role);
      expect(
        (await create(token, { name: 'x', units: [mine.unitId], from: '2026-10' })).statusCode,
      ).toBe(403);
      expect(
        (
          await h.app.inject({
            method: 'GET',
            url: '/api/v1/mrv/verifiers',
            headers: bearer(token),
          })
        ).statusCode,
      ).toBe(403);
    }
    // Raw SQL as the API role without an admin scope: no token is made, listed or revoked.
    const c = new pg.Client({ connectionString: h.apiUrl });
    await c.connect();
    try {
      for (const q of [
        "SELECT * FROM thamani_mrv_verifier_insert('x', sha256('thv_x'), ARRAY[$1::uuid], now(), now() + interval '1 month', now() + interval '1 day', 'me')",
        'SELECT * FROM thamani_mrv_verifier_list() WHERE $1::text IS NOT NULL',
        'SELECT thamani_mrv_verifier_revoke(id) FROM (SELECT $1::uuid AS id) x',
        'SELECT * FROM mrv_verifier_tokens WHERE $1::text IS NOT NULL',
      ])
        await expect(c.query(q, [mine.unitId])).rejects.toThrow(/scope|permission denied/);
    } finally {
      await c.end();
    }
  });

  it('bad input gets a clear 400: a collection point, an unknown unit, a bad month, too many days', async () => {
    const admin = await h.tokenFor('admin');
    const cp = await h.t.database.pool.query<{ id: string }>(
      "INSERT INTO units (site_id, kind, name) SELECT site_id, 'collection_point', 'cp for verifier' FROM units WHERE id = $1 RETURNING id",
      [mine.unitId],
    );
    for (const [body, code] of [
      [{ name: 'x', units: [cp.rows[0]!.id], from: '2026-10' }, 'UNIT_NOT_FOUND'],
      [{ name: 'x', units: ['nowhere'], from: '2026-10' }, 'UNIT_NOT_FOUND'],
      [{ name: 'x', units: [mine.unitId], from: '2026-13' }, 'VALIDATION_FAILED'],
      [{ name: 'x', units: [mine.unitId], from: '2026-10', days: 367 }, 'VALIDATION_FAILED'],
      [{ name: 'x', units: [mine.unitId], from: '2026-10', to: '2026-09' }, 'MRV_BAD_PERIOD'],
    ] as const) {
      const res = await create(admin, body);
      expect(res.statusCode >= 400 && res.statusCode < 500, res.body).toBe(true);
      expect(res.json<{ code: string }>().code).toBe(code);
    }
  });
});
