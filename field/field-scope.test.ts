import fc from 'fast-check';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { scopedServices } from '../api/scoped-services.ts';
import { createDashboardQueries } from '../dashboards/dashboard-repo.ts';
import { timeseriesInfo } from '../db/timeseries.ts';
import {
  createApiHarness,
  createUserWithPassword,
  systemActor,
  type ApiHarness,
} from '../test/api-harness.ts';
import { createTestDatabase } from '../test/db.ts';
import { fieldRoutes } from './field-routes.ts';
import { fieldServiceMaker } from './index.ts';

/**
 * Nobody records or reads field records outside their scope (issue 19), as a property over
 * generated units and users: through the API, and by raw SQL as the application's database role
 * in the scope the database verified from the user's own session (as db/rls.test.ts does).
 */
const PASSWORD = 'correct horse battery staple';
const KINDS = ['biodigester', 'collection_point'] as const;
const ROLES = ['kitchen_manager', 'collector', 'technician'] as const;
let h: ApiHarness;
let site = '';
let run = 0;

beforeAll(async () => {
  const t = await createTestDatabase();
  const queries = createDashboardQueries({ mode: (await timeseriesInfo(t.database.pool)).mode });
  h = await createApiHarness(
    {
      routes: ({ audit, db }) => [
        {
          plugin: fieldRoutes({
            field: scopedServices(
              db,
              fieldServiceMaker({ audit, queries, timeZone: 'Africa/Nairobi' }),
            ),
            timeZone: 'Africa/Nairobi',
          }),
        },
      ],
    },
    { t },
  );
  site = (
    await h.t.database.pool.query<{ id: string }>(
      `INSERT INTO sites (name) VALUES ('Scope School') RETURNING id`,
    )
  ).rows[0]!.id;
});

/** Raw SQL as the API's login role in the scope verified from `session`; errors come back as text. */
async function asApiRole<T>(
  session: string,
  fn: (c: pg.Client) => Promise<T>,
): Promise<T | string> {
  const c = new pg.Client({ connectionString: h.apiUrl });
  await c.connect();
  try {
    await c.query('BEGIN');
    await c.query(`SELECT thamani_enter_session($1)`, [session]);
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    return `error: ${(err as Error).message}`;
  } finally {
    await c.end();
  }
}

const world = fc.record({
  units: fc.array(fc.constantFrom(...KINDS), { minLength: 2, maxLength: 5 }),
  users: fc.array(
    fc.record({
      role: fc.constantFrom(...ROLES),
      assigned: fc.uniqueArray(fc.nat({ max: 4 }), { maxLength: 5 }),
    }),
    { minLength: 1, maxLength: 3 },
  ),
});

describe('field records stay in scope (property)', () => {
  it('nobody reads or records feedings or collections of a unit outside their scope, by API or raw SQL', async () => {
    await fc.assert(
      fc.asyncProperty(world, async (w) => {
        run++;
        const owner = h.t.database.pool;
        const units: { id: string; kind: (typeof KINDS)[number] }[] = [];
        for (const [i, kind] of w.units.entries()) {
          const { rows } = await owner.query<{ id: string }>(
            `INSERT INTO units (site_id, kind, name, created_at) VALUES ($1, $2, $3, now() - interval '1 day') RETURNING id`,
            [site, kind, `r${run}-u${i}`],
          );
          units.push({ id: rows[0]!.id, kind });
          // One record of each unit, written by the owner (no scope: not subject to row security).
          await owner.query(
            kind === 'biodigester'
              ? `INSERT INTO feedings (unit_id, fed_at, kg, recorded_by) VALUES ($1, now(), 10, 'seed')`
              : `INSERT INTO collections (unit_id, collected_at, weight_kg, collected_by) VALUES ($1, now(), 10, 'seed')`,
            [rows[0]!.id],
          );
        }
        const ids = units.map((u) => u.id);
        for (const [i, spec] of w.users.entries()) {
          const username = `r${run}-p${i}`;
          const { user } = await createUserWithPassword(h, {
            username,
            role: spec.role,
            password: PASSWORD,
          });
          const assigned = [...new Set(spec.assigned.filter((n) => n < units.length))].map(
            (n) => units[n]!,
          );
          await h.users.assignUnits(
            user.id,
            assigned.map((u) => u.id),
            systemActor,
          );
          const sees = (u: (typeof units)[number]) =>
            spec.role === 'technician' ||
            (assigned.includes(u) &&
              u.kind === (spec.role === 'kitchen_manager' ? 'biodigester' : 'collection_point'));
          const session = (
            await h.sessions.login(
              { username, password: PASSWORD },
              { actorId: 'anonymous', actorRole: 'anonymous', ip: '127.0.0.1' },
            )
          ).sessionId;
          const login = await h.app.inject({
            method: 'POST',
            url: '/api/v1/auth/login',
            payload: { username, password: PASSWORD },
          });
          const headers = {
            cookie: String(login.headers['set-cookie']).split(';')[0]!,
            'x-csrf-token': login.json<{ csrfToken: string }>().csrfToken,
          };

          // Raw SQL: the rows the database lets this user read are exactly those of units in scope.
          const seen = await asApiRole(session, async (c) => ({
            feedings: (
              await c.query<{ unit_id: string }>(
                `SELECT DISTINCT unit_id FROM feedings WHERE unit_id = ANY($1::uuid[]) ORDER BY unit_id`,
                [ids],
              )
            ).rows.map((r) => r.unit_id),
            collections: (
              await c.query<{ unit_id: string }>(
                `SELECT DISTINCT unit_id FROM collections WHERE unit_id = ANY($1::uuid[]) ORDER BY unit_id`,
                [ids],
              )
            ).rows.map((r) => r.unit_id),
          }));
          const expected = (kind: string) =>
            units
              .filter((u) => u.kind === kind && sees(u))
              .map((u) => u.id)
              .sort();
          expect(seen).toEqual({
            feedings: expected('biodigester'),
            collections: expected('collection_point'),
          });

          for (const u of units) {
            const feeding = u.kind === 'biodigester';
            // Raw SQL: writing a record of a unit out of scope is refused by row security.
            if (!sees(u)) {
              const wrote = await asApiRole(session, (c) =>
                c.query(
                  feeding
                    ? `INSERT INTO feedings (unit_id, fed_at, kg, recorded_by) VALUES ($1, now(), 5, $2)`
                    : `INSERT INTO collections (unit_id, collected_at, weight_kg, collected_by) VALUES ($1, now(), 5, $2)`,
                  [u.id, user.id],
                ),
              );
              expect(wrote).toMatch(/^error: new row violates row-level security policy/);
            }
            // The API: reading answers only in scope; recording too (else 404, or 403 without the permission).
            const read = await h.app.inject({
              method: 'GET',
              url: feeding
                ? `/api/v1/units/${u.id}/feedings`
                : `/api/v1/units/${u.id}/collections?from=2026-01-01&to=2026-12-31&format=json`,
              headers,
            });
            expect(read.statusCode, `${spec.role} reads ${u.kind}`).toBe(sees(u) ? 200 : 404);
            const permitted =
              spec.role === 'technician' ||
              spec.role === (feeding ? 'kitchen_manager' : 'collector');
            const write = await h.app.inject({
              method: 'POST',
              url: feeding ? `/api/v1/units/${u.id}/feedings` : `/api/v1/units/${u.id}/collections`,
              headers,
              payload: feeding ? { kg: 7 } : { weightKg: 7 },
            });
            expect(write.statusCode, `${spec.role} writes ${u.kind}`).toBe(
              !permitted ? 403 : sees(u) ? 201 : 404,
            );
          }
        }
        // Whatever was tried: every record of these units is the seed's, or by someone assigned to
        // the unit, or by a role that sees the whole fleet.
        const { rows } = await owner.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM (
             SELECT unit_id, recorded_by AS who FROM feedings UNION ALL SELECT unit_id, collected_by FROM collections
           ) r WHERE r.unit_id = ANY($1::uuid[]) AND r.who <> 'seed'
             AND NOT EXISTS (SELECT 1 FROM user_unit_assignments a WHERE a.user_id::text = r.who AND a.unit_id = r.unit_id)
             AND NOT EXISTS (SELECT 1 FROM users t WHERE t.id::text = r.who AND t.role IN ('admin', 'technician'))`,
          [ids],
        );
        expect(rows[0]!.n).toBe(0);
      }),
      { numRuns: 12 },
    );
  }, 600_000);
});
