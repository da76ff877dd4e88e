import { generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../audit/index.ts';
import { parsePublicKeys } from '../audit/audit-signer.ts';
import { scopedServices } from '../api/scoped-services.ts';
import { createApiHarness, type ApiHarness } from '../test/api-harness.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { seedDigesterMonth } from '../test/mrv-fixture.ts';
import { createMrvRepo, createMrvService, monthPeriod, mrvSignerFromKey } from './index.ts';
import { mrvKeyRoute, mrvRoutes } from './mrv-routes.ts';
import { checkSignature, parseReportDocument } from './mrv-report-fns.ts';

const signer = mrvSignerFromKey(generateKeyPairSync('ed25519').privateKey);
let h: ApiHarness;
let reportId: string;

beforeAll(async () => {
  h = await createApiHarness({
    routes: ({ db, audit }) => {
      const repo = createMrvRepo();
      return [
        { plugin: mrvKeyRoute({ signer }), root: true },
        {
          plugin: mrvRoutes({
            mrv: scopedServices(db, (tx) => createMrvService({ db: tx, repo, audit, signer })),
          }),
        },
      ];
    },
  });
  // Issued as the CLI does: with the owner's connection.
  const owner = h.t.database;
  const fx = await seedDigesterMonth(owner.pool, { minutes: 1440 });
  const issuer = createMrvService({
    db: owner.db,
    repo: createMrvRepo(),
    audit: createAuditLog({ db: owner.db, signer: testAuditSigner }),
    signer,
  });
  reportId = (
    await issuer.issue({
      unit: fx.unitId,
      ...monthPeriod('2026-10'),
      actor: { actorId: 'cli:test', actorRole: 'admin' },
    })
  ).id;
}, 300_000);

describe('MRV over HTTPS', () => {
  it('publishes the signing key at the well-known URL, without authentication; a downloaded report verifies under it', async () => {
    const key = await h.app.inject({ method: 'GET', url: '/.well-known/thamani-mrv-key' });
    expect(key.statusCode).toBe(200);
    expect(key.headers['x-key-id']).toBe(signer.keyId);
    const auditor = await h.tokenFor('auditor');
    const res = await h.app.inject({
      method: 'GET',
      url: `/api/v1/mrv/reports/${reportId}`,
      headers: { authorization: `Bearer ${auditor}` },
    });
    expect(res.statusCode).toBe(200);
    expect(checkSignature(parseReportDocument(res.body), parsePublicKeys(key.body))).toMatchObject({
      ok: true,
      trustedKey: true,
    });
    const list = await h.app.inject({
      method: 'GET',
      url: '/api/v1/mrv/reports',
      headers: { authorization: `Bearer ${auditor}` },
    });
    expect(list.statusCode, list.body).toBe(200);
    expect(list.json<{ reports: { id: string }[] }>().reports.map((r) => r.id)).toEqual([reportId]);
    const csv = await h.app.inject({
      method: 'GET',
      url: `/api/v1/mrv/reports/${reportId}/readings.csv`,
      headers: { authorization: `Bearer ${auditor}` },
    });
    expect(csv.statusCode).toBe(200);
    expect(csv.body.split('\n').filter(Boolean).length - 1).toBe(
      parseReportDocument(res.body).report.merkle.size,
    );
    const audited = await h.t.database.pool.query<{
      actor_role: string;
      after: { format: string };
    }>("SELECT actor_role, after FROM audit_log WHERE action = 'mrv.report_download' ORDER BY seq");
    expect(audited.rows.map((r) => [r.actor_role, r.after.format])).toEqual([
      ['auditor', 'json'],
      ['auditor', 'readings.csv'],
    ]);
  });

  it('answers 404 with its code for an unknown report, and 403 to a role without audit:read', async () => {
    const auditor = await h.tokenFor('auditor');
    const missing = await h.app.inject({
      method: 'GET',
      url: '/api/v1/mrv/reports/00000000-0000-4000-8000-000000000000/readings.csv',
      headers: { authorization: `Bearer ${auditor}` },
    });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'MRV_REPORT_NOT_FOUND' });
    const manager = await h.tokenFor('kitchen_manager');
    expect(
      (
        await h.app.inject({
          method: 'GET',
          url: `/api/v1/mrv/reports/${reportId}`,
          headers: { authorization: `Bearer ${manager}` },
        })
      ).statusCode,
    ).toBe(403);
  });
});
