import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../audit/index.ts';
import { scopedServices } from '../api/scoped-services.ts';
import { createApiHarness, type ApiHarness } from '../test/api-harness.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { ensureFleetPartitions, seedFleet, type SeededFleet } from '../test/mrv-site-fixture.ts';
import { createMrvRepo, createMrvService, monthPeriod, mrvSignerFromKey } from './index.ts';
import { checkSignature, parseReportDocument } from './mrv-report-fns.ts';
import { mrvRoutes } from './mrv-routes.ts';
import { createVerifierRepo } from './verifier-repo.ts';
import { verifierRoutes } from './verifier-routes.ts';
import { createVerifierAdmin } from './verifier-service.ts';

/**
 * Site reports through the HTTP API and the verifier pages (issue 20). A verifier scoped to
 * named digesters sees a site report only when its token names EVERY digester of the report:
 * the pages, the downloads and raw SQL as the API's database role agree (row-level security,
 * migration mrv_site_reports_security), over generated scopes.
 */

const signer = mrvSignerFromKey(generateKeyPairSync('ed25519').privateKey);
const actor = {
  actorId: 'cli:test',
  actorRole: 'admin',
  ip: null,
  userAgent: null,
  requestId: null,
};
let h: ApiHarness;
let admin: ReturnType<typeof createVerifierAdmin>;
let fleet: SeededFleet;
let outsider: SeededFleet;
let siteReport: { id: string; readings: number; document: string };
const digesterReports: { id: string; unitId: string }[] = [];

beforeAll(async () => {
  h = await createApiHarness({
    routes: ({ db, audit }) => {
      const repo = createMrvRepo();
      return [
        { plugin: verifierRoutes({ db, audit }), root: true },
        {
          plugin: mrvRoutes({
            mrv: scopedServices(db, (tx) => createMrvService({ db: tx, repo, audit, signer })),
          }),
        },
      ];
    },
  });
  const owner = h.t.database;
  await ensureFleetPartitions(owner.pool);
  const spec = { devices: 1 as const, missing: 100, quarantined: [], failedCalibration: null };
  fleet = await seedFleet(owner.pool, [
    { ...spec, silent: false, seed: 1, offline: { from: 0, length: 144 } },
    { ...spec, silent: false, seed: 2, offline: { from: 0, length: 0 } },
    { ...spec, silent: true, seed: 3, offline: { from: 0, length: 0 } },
  ]);
  outsider = await seedFleet(owner.pool, [
    { ...spec, silent: false, seed: 4, offline: { from: 0, length: 0 } },
    { ...spec, silent: false, seed: 5, offline: { from: 0, length: 0 } },
  ]);
  const mrv = createMrvService({
    db: owner.db,
    repo: createMrvRepo(),
    audit: createAuditLog({ db: owner.db, signer: testAuditSigner }),
    signer,
  });
  const issued = await mrv.issueSite({ site: fleet.siteId, ...monthPeriod('2026-10'), actor });
  siteReport = {
    ...issued,
    readings: (parseReportDocument(issued.document).report as unknown as { readings: number })
      .readings,
  };
  for (const u of fleet.units) {
    const r = await mrv.issue({ unit: u.id, ...monthPeriod('2026-10'), actor });
    digesterReports.push({ id: r.id, unitId: u.id });
  }
  admin = createVerifierAdmin({
    db: owner.db,
    repo: createVerifierRepo(),
    audit: createAuditLog({ db: owner.db, signer: testAuditSigner }),
  });
}, 300_000);

const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });

async function asApiRole<T>(secret: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: h.apiUrl });
  await c.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT thamani_enter_mrv_verifier($1)', [secret]);
    return await fn(c);
  } finally {
    await c.query('ROLLBACK').catch(() => undefined);
    await c.end();
  }
}

describe('site reports for verifiers', () => {
  it('a verifier sees a site report only when scoped to every digester of it: pages, downloads and raw SQL as the API role', async () => {
    const candidates = [...fleet.units, outsider.units[0]!];
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 0, max: candidates.length - 1 }), {
          minLength: 1,
          maxLength: candidates.length,
        }),
        async (idx) => {
          const chosen = idx.map((i) => candidates[i]!);
          const { secret } = await admin.create(
            {
              name: `site scope ${idx.join(',')}`,
              units: chosen.map((u) => u.id),
              fromMonth: '2026-10',
              toMonth: '2026-10',
              days: 7,
            },
            actor,
          );
          const ids = new Set(chosen.map((u) => u.id));
          const sees = fleet.units.every((u) => ids.has(u.id));
          const list = await h.app.inject({
            method: 'GET',
            url: '/verifier',
            headers: bearer(secret),
          });
          expect(list.statusCode).toBe(200);
          const listed = new Set(
            [...list.body.matchAll(/data-report="([0-9a-f-]{36})"/g)].map((m) => m[1]),
          );
          expect(listed.has(siteReport.id)).toBe(sees);
          for (const d of digesterReports) expect(listed.has(d.id)).toBe(ids.has(d.unitId));
          for (const file of [
            'report.json',
            'readings.csv',
            'report.html',
            'leaf-hashes.bin',
            '',
          ]) {
            const res = await h.app.inject({
              method: 'GET',
              url: `/verifier/reports/${siteReport.id}${file ? `/${file}` : ''}`,
              headers: bearer(secret),
            });
            expect([file, res.statusCode]).toEqual([file, sees ? 200 : 404]);
            if (!sees) continue;
            if (file === 'report.json') expect(res.body).toBe(siteReport.document);
            if (file === 'readings.csv')
              expect(res.body.trimEnd().split('\n').length - 1).toBe(siteReport.readings);
            if (file === 'report.html')
              for (const u of fleet.units) expect(res.body).toContain(u.name);
          }
          await asApiRole(secret, async (c) => {
            const reports = await c.query<{ id: string }>('SELECT id FROM mrv_reports');
            expect(reports.rows.some((r) => r.id === siteReport.id)).toBe(sees);
            const hashes = await c.query<{ n: number }>(
              'SELECT count(*)::int AS n FROM mrv_report_leaf_hashes WHERE report_id = $1',
              [siteReport.id],
            );
            expect(hashes.rows[0]!.n > 0).toBe(sees);
          });
        },
      ),
      { numRuns: 12 },
    );
  }, 600_000);

  it('the HTTP API lists a site report with its site and serves its JSON and readings CSV', async () => {
    const auditor = await h.tokenFor('auditor');
    const headers = { authorization: `Bearer ${auditor}` };
    const list = await h.app.inject({
      method: 'GET',
      url: `/api/v1/mrv/reports?unitId=${fleet.units[1]!.id}`,
      headers,
    });
    expect(list.statusCode).toBe(200);
    const items = list.json<{
      reports: { id: string; unitId: string | null; siteId: string | null }[];
    }>().reports;
    expect(items).toContainEqual(
      expect.objectContaining({ id: siteReport.id, unitId: null, siteId: fleet.siteId }),
    );
    const json = await h.app.inject({
      method: 'GET',
      url: `/api/v1/mrv/reports/${siteReport.id}`,
      headers,
    });
    expect(json.statusCode).toBe(200);
    expect(checkSignature(parseReportDocument(json.body)).ok).toBe(true);
    const csv = await h.app.inject({
      method: 'GET',
      url: `/api/v1/mrv/reports/${siteReport.id}/readings.csv`,
      headers,
    });
    expect(csv.statusCode).toBe(200);
    expect(csv.body.trimEnd().split('\n').length - 1).toBe(siteReport.readings);
  });
});
