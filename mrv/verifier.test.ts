import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../audit/index.ts';
import { parsePublicKeys } from '../audit/audit-signer.ts';
import { ensurePartitions, timeseriesInfo } from '../db/timeseries.ts';
import { createApiHarness, type ApiHarness } from '../test/api-harness.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { createMrvRepo, createMrvService, monthPeriod, mrvSignerFromKey } from './index.ts';
import { checkSignature, parseReportDocument } from './mrv-report-fns.ts';
import { checkReadingsCsv } from './mrv-verify-offline.ts';
import { createVerifierRepo } from './verifier-repo.ts';
import { VERIFIER_COOKIE, verifierRoutes } from './verifier-routes.ts';
import { createVerifierAdmin } from './verifier-service.ts';

/**
 * Verifier access (issue 20): a token opens the reports and archived readings of its digesters
 * within its months and nothing else — through the pages and downloads, and through raw SQL as
 * the API's database role in the scope the token opens (row-level security, migration 0031).
 */

const signer = mrvSignerFromKey(generateKeyPairSync('ed25519').privateKey);
const MONTHS = ['2026-07', '2026-08', '2026-09', '2026-10'] as const;
const UNITS = 4;
const actor = {
  actorId: 'cli:test',
  actorRole: 'admin',
  ip: null,
  userAgent: null,
  requestId: null,
};

let h: ApiHarness;
let admin: ReturnType<typeof createVerifierAdmin>;
const units: { id: string; name: string }[] = [];
/** Every issued report: id, unit, period, and its archived leaves (unit, ts) as the owner sees them. */
const issued: { id: string; unitId: string; start: Date; end: Date; version: number }[] = [];

beforeAll(async () => {
  h = await createApiHarness({
    routes: ({ db, audit }) => [{ plugin: verifierRoutes({ db, audit }), root: true }],
  });
  const owner = h.t.database.pool;
  const mode = (await timeseriesInfo(owner)).mode;
  const behind = Math.ceil((Date.now() - Date.parse('2026-07-01T00:00:00Z')) / 86_400_000) + 8;
  await ensurePartitions(owner, mode, { aheadDays: 1, behindDays: Math.max(behind, 35) });
  const site = await owner.query<{ id: string }>(
    "INSERT INTO sites (name) VALUES ('Verifier school') RETURNING id",
  );
  for (let u = 0; u < UNITS; u += 1) {
    const name = `vd-${u}`;
    const id = (
      await owner.query<{ id: string }>(
        "INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', $2) RETURNING id",
        [site.rows[0]!.id, name],
      )
    ).rows[0]!.id;
    units.push({ id, name });
    await owner.query(
      "INSERT INTO devices (id, unit_id, kind, status, firmware_version) VALUES ($1, $2, 'biodigester', 'active', '1.0.0')",
      [`${name}-dev`, id],
    );
    // Every 6 hours from July to October, with flow and methane.
    await owner.query(
      `INSERT INTO readings (ts, device_id, unit_id, seq, gas_flow_lpm, methane_pct)
       SELECT timestamptz '2026-07-01Z' + make_interval(hours => 6 * g), $1, $2, g + 1, 10 + $3 + (g % 5), 55 + (g % 7)
         FROM generate_series(0, 4 * 123 - 1) g`,
      [`${name}-dev`, id, u],
    );
  }
  const mrv = createMrvService({
    db: h.t.database.db,
    repo: createMrvRepo(),
    audit: createAuditLog({ db: h.t.database.db, signer: testAuditSigner }),
    signer,
  });
  for (const u of units)
    for (const m of MONTHS.slice(0, 3)) {
      const r = await mrv.issue({ unit: u.id, ...monthPeriod(m), actor });
      issued.push({ id: r.id, unitId: u.id, ...monthPeriod(m), version: r.version });
    }
  // A correction: versions of one period share its readings.
  const v2 = await mrv.issue({
    unit: units[0]!.id,
    ...monthPeriod('2026-08'),
    actor,
    reason: 'late readings',
  });
  issued.push({ id: v2.id, unitId: units[0]!.id, ...monthPeriod('2026-08'), version: 2 });
  admin = createVerifierAdmin({
    db: h.t.database.db,
    repo: createVerifierRepo(),
    audit: createAuditLog({ db: h.t.database.db, signer: testAuditSigner }),
  });
}, 300_000);

const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });

/** Raw SQL as the API role, in the scope the secret opens. */
async function asApiRole<T>(secret: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: h.apiUrl });
  await c.connect();
  try {
    await c.query('BEGIN');
    // NULL when the token opens nothing: the transaction then has no scope at all.
    await c.query('SELECT thamani_enter_mrv_verifier($1) AS role', [secret]);
    return await fn(c);
  } finally {
    await c.query('ROLLBACK').catch(() => undefined);
    await c.end();
  }
}

describe('verifier access', () => {
  it('never reads outside its digesters and months: pages, downloads and raw SQL as the API role (generated scopes)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 0, max: UNITS - 1 }), { minLength: 1, maxLength: UNITS }),
        fc.integer({ min: 0, max: MONTHS.length - 1 }),
        fc.integer({ min: 0, max: MONTHS.length - 1 }),
        fc.boolean(),
        async (unitIdx, a, b, byName) => {
          const [from, to] = [MONTHS[Math.min(a, b)]!, MONTHS[Math.max(a, b)]!];
          const chosen = unitIdx.map((i) => units[i]!);
          const { secret, token } = await admin.create(
            {
              name: `vvb ${unitIdx.join(',')} ${from}..${to}`,
              units: chosen.map((u) => (byName ? u.name : u.id)),
              fromMonth: from,
              toMonth: to,
              days: 7,
            },
            actor,
          );
          const lo = monthPeriod(from).start;
          const hi = monthPeriod(to).end;
          const ids = new Set(chosen.map((u) => u.id));
          const inScope = (unitId: string, start: Date, end: Date) =>
            ids.has(unitId) && start >= lo && end <= hi;
          const expected = issued.filter((r) => inScope(r.unitId, r.start, r.end)).map((r) => r.id);

          // The list page names exactly the reports in scope.
          const list = await h.app.inject({
            method: 'GET',
            url: '/verifier',
            headers: bearer(secret),
          });
          expect(list.statusCode, list.body).toBe(200);
          const listed = [...list.body.matchAll(/data-report="([0-9a-f-]{36})"/g)].map((m) => m[1]);
          expect(new Set(listed)).toEqual(new Set(expected));

          // Each report: its downloads in scope, a 404 outside (never its content).
          for (const r of issued) {
            const json = await h.app.inject({
              method: 'GET',
              url: `/verifier/reports/${r.id}/report.json`,
              headers: bearer(secret),
            });
            if (!expected.includes(r.id)) {
              expect(json.statusCode).toBe(404);
              expect(json.body).not.toContain(r.unitId);
              continue;
            }
            expect(json.statusCode).toBe(200);
          }
          const one = expected[0];
          if (one) {
            const csv = await h.app.inject({
              method: 'GET',
              url: `/verifier/reports/${one}/readings.csv`,
              headers: bearer(secret),
            });
            expect(csv.statusCode).toBe(200);
            const rows = csv.body.trim().split('\n').slice(1);
            expect(rows.length).toBeGreaterThan(0);
            for (const line of rows) {
              const [, unitId, ts] = line.split(',');
              expect(ids.has(unitId!)).toBe(true);
              expect(Date.parse(ts!)).toBeGreaterThanOrEqual(lo.getTime());
              expect(Date.parse(ts!)).toBeLessThan(hi.getTime());
            }
          }

          // Raw SQL as the API role in the scope the token opens: row-level security alone.
          const expectedLeaves = await h.t.database.pool.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM mrv_readings_archive WHERE unit_id = ANY($1::uuid[]) AND ts >= $2 AND ts < $3',
            [[...ids], lo, hi],
          );
          await asApiRole(secret, async (c) => {
            const reports = await c.query<{
              id: string;
              unit_id: string;
              period_start: Date;
              period_end: Date;
            }>('SELECT id, unit_id, period_start, period_end FROM mrv_reports');
            expect(new Set(reports.rows.map((r) => r.id))).toEqual(new Set(expected));
            for (const r of reports.rows)
              expect(inScope(r.unit_id, r.period_start, r.period_end)).toBe(true);
            const leaves = await c.query<{ unit_id: string; ts: Date }>(
              'SELECT unit_id, ts FROM mrv_readings_archive',
            );
            expect(leaves.rows.length).toBe(expectedLeaves.rows[0]!.n);
            for (const l of leaves.rows) {
              expect(ids.has(l.unit_id)).toBe(true);
              expect(l.ts >= lo && l.ts < hi).toBe(true);
            }
            // Everything else a verifier has no business reading: none of its rows. On the
            // TimescaleDB path with compression the API role has no grant on `readings` at all
            // (0007: it reads scoped_readings), which refuses even more: also "none".
            for (const table of [
              'readings',
              'scoped_readings',
              'devices',
              'units',
              'sites',
              'quarantine',
              'latest_readings',
              'alerts',
              'certificates',
            ]) {
              await c.query('SAVEPOINT t');
              const n = await c
                .query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)
                .then(
                  (r) => r.rows[0]!.n,
                  (err: { code?: string }) => {
                    if (err.code !== '42501') throw err as Error;
                    return 0;
                  },
                );
              await c.query('ROLLBACK TO SAVEPOINT t');
              expect(n, table).toBe(0);
            }
            await c.query('SAVEPOINT s');
            await expect(c.query('SELECT * FROM mrv_verifier_tokens')).rejects.toThrow(
              /permission denied/,
            );
            await c.query('ROLLBACK TO SAVEPOINT s');
            await expect(
              c.query(
                'INSERT INTO mrv_reports (id, unit_id, period_start, period_end, version, issued_at, issued_by, merkle_root, leaf_count, key_id, document) VALUES (gen_random_uuid(), $1, $2, $3, 9, now(), $4, $5, 0, $6, $7)',
                [chosen[0]!.id, lo, hi, `verifier:${token.id}`, 'x', 'x', '{}'],
              ),
            ).rejects.toThrow(/row-level security/);
          });
        },
      ),
      { numRuns: 12 },
    );
  }, 600_000);

  it('refuses an expired or revoked token everywhere, at once, and a made-up one', async () => {
    const { secret, token } = await admin.create(
      {
        name: 'expiring',
        units: [units[1]!.id],
        fromMonth: '2026-07',
        toMonth: '2026-09',
        days: 1,
      },
      actor,
    );
    const report = issued.find((r) => r.unitId === units[1]!.id)!;
    const url = `/verifier/reports/${report.id}/report.json`;
    expect((await h.app.inject({ method: 'GET', url, headers: bearer(secret) })).statusCode).toBe(
      200,
    );
    // Its expiry passes (the owner moves it, as time would).
    await h.t.database.pool.query(
      "UPDATE mrv_verifier_tokens SET created_at = now() - interval '2 days', expires_at = now() - interval '1 second' WHERE id = $1",
      [token.id],
    );
    for (const u of [url, `/verifier/reports/${report.id}/readings.csv`])
      expect(
        (await h.app.inject({ method: 'GET', url: u, headers: bearer(secret) })).statusCode,
      ).toBe(401);
    const page = await h.app.inject({
      method: 'GET',
      url: '/verifier',
      cookies: { [VERIFIER_COOKIE]: secret },
    });
    expect(page.statusCode).toBe(401);
    expect(page.body).toContain('This token does not open anything');
    expect(String(page.headers['set-cookie'])).toMatch(new RegExp(`^${VERIFIER_COOKIE}=;`));
    await asApiRole(secret, async (c) => {
      expect((await c.query('SELECT count(*)::int AS n FROM mrv_reports')).rows[0]).toEqual({
        n: 0,
      });
    });
    const signIn = await h.app.inject({
      method: 'POST',
      url: '/verifier/session',
      payload: { token: secret },
    });
    expect(signIn.statusCode).toBe(401);

    const live = await admin.create(
      { name: 'revoked', units: [units[1]!.id], fromMonth: '2026-07', toMonth: '2026-09', days: 3 },
      actor,
    );
    expect(
      (await h.app.inject({ method: 'GET', url, headers: bearer(live.secret) })).statusCode,
    ).toBe(200);
    expect(await admin.revoke(live.token.id, actor)).toBe(true);
    expect(
      (await h.app.inject({ method: 'GET', url, headers: bearer(live.secret) })).statusCode,
    ).toBe(401);
    expect(
      (await h.app.inject({ method: 'GET', url, headers: bearer(`${live.secret}x`) })).statusCode,
    ).toBe(401);
    const audit = await h.t.database.pool.query<{ action: string }>(
      "SELECT action FROM audit_log WHERE target_type = 'mrv_verifier' AND target_id = $1 ORDER BY seq",
      [live.token.id],
    );
    expect(audit.rows.map((r) => r.action)).toEqual(['mrv.verifier_create', 'mrv.verifier_revoke']);
  });

  it('signs in with a form and a cookie; JSON, CSV and printable HTML agree with the signed report; every download audited', async () => {
    const target = issued.find((r) => r.version === 2)!;
    const { secret, token } = await admin.create(
      {
        name: 'consistency',
        units: [target.unitId],
        fromMonth: '2026-08',
        toMonth: '2026-08',
        days: 2,
      },
      actor,
    );
    const signIn = await h.app.inject({
      method: 'POST',
      url: '/verifier/session',
      payload: { token: secret },
    });
    expect(signIn.statusCode).toBe(303);
    const cookie = String(signIn.headers['set-cookie']);
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/Secure/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const cookies = { [VERIFIER_COOKIE]: secret };
    const get = (u: string) => h.app.inject({ method: 'GET', url: u, cookies });

    const base = `/verifier/reports/${target.id}`;
    const page = await get(base);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain(`${base}/readings.csv`);
    const json = await get(`${base}/report.json`);
    const stored = await h.t.database.pool.query<{ document: string }>(
      'SELECT document FROM mrv_reports WHERE id = $1',
      [target.id],
    );
    expect(json.body).toBe(stored.rows[0]!.document);
    const doc = parseReportDocument(json.body);
    expect(checkSignature(doc, parsePublicKeys(signer.publicKeyPem))).toMatchObject({
      ok: true,
      trustedKey: true,
    });

    const csv = await get(`${base}/readings.csv`);
    expect(csv.statusCode).toBe(200);
    const dir = await mkdtemp(path.join(tmpdir(), 'thamani-verifier-'));
    await writeFile(path.join(dir, 'r.csv'), csv.body);
    const leaves = await get(`${base}/leaf-hashes.bin`);
    expect(leaves.statusCode).toBe(200);
    await writeFile(path.join(dir, 'l.bin'), leaves.rawPayload);
    const check = await checkReadingsCsv(doc, path.join(dir, 'r.csv'), path.join(dir, 'l.bin'));
    expect(check).toMatchObject({
      ok: true,
      leaves: doc.report.merkle.size,
      differingLeaves: [],
    });

    const printable = await get(`${base}/report.html`);
    expect(printable.statusCode, printable.body).toBe(200);
    expect(printable.body).not.toMatch(/<script|style=|<style/i);
    expect(printable.body).toContain(`${'/verifier/assets'}/verifier.css`);
    const fields = [...(printable.body + page.body).matchAll(/<(data|code)\b([^>]*)>([^<]*)</g)]
      .map(([, tag, attrs, content]) => [
        '',
        tag,
        /\bvalue="([^"]*)"/.exec(attrs!)?.[1],
        /\bdata-field="([^"]+)"/.exec(attrs!)?.[1],
        content,
      ])
      .filter((m) => m[3] !== undefined);
    expect(fields.length).toBeGreaterThan(20);
    const at = (p: string): unknown =>
      p.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], {
        ...doc.report,
        signature: doc.signature,
      });
    const unescape = (s: string) =>
      s.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));
    for (const [, tag, value, field, content] of fields) {
      const expectedValue = at(field!);
      if (tag === 'data') expect(Number(unescape(value!)), field).toBe(expectedValue);
      else expect(unescape(content!), field).toBe(expectedValue);
    }
    for (const p of [
      'merkle.root',
      'signature.keyId',
      'signature.value',
      'quantities.biogasNm3',
      'estimate.totalKgCo2e',
    ])
      expect(fields.map((f) => f[3])).toContain(p);

    const audited = await h.t.database.pool.query<{
      actor_id: string;
      actor_role: string;
      after: { format: string };
    }>(
      "SELECT actor_id, actor_role, after FROM audit_log WHERE action = 'mrv.report_download' AND target_id = $1 AND actor_id = $2 ORDER BY seq",
      [target.id, `verifier:${token.id}`],
    );
    expect(audited.rows.map((r) => [r.actor_role, r.after.format])).toEqual([
      ['verifier', 'json'],
      ['verifier', 'readings.csv'],
      ['verifier', 'leaf-hashes'],
      ['verifier', 'html'],
    ]);
  });
});
