import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { scopedServices } from '../api/scoped-services.ts';
import { roles, type Role } from '../auth/permissions.ts';
import type { Db } from '../db/client.ts';
import { runScoped } from '../db/scoped.ts';
import {
  createApiHarness,
  createUserWithPassword,
  systemActor,
  type ApiHarness,
} from '../test/api-harness.ts';
import { createCommandService } from './command-service.ts';
import { deviceConfigRoutes } from './config-routes.ts';
import { createDeviceConfigService } from './config-service.ts';

/**
 * Technicians and admins only, checked twice: by the route's permission (devices:configure),
 * and in the database (row-level security, migration 0028) for a caller that got past the code,
 * whatever units it is assigned. Over generated roles, unit assignments, devices and operations.
 */

let h: ApiHarness;
const units: string[] = [];
const devices = ['bd-role-1', 'bd-role-2', 'cp-role-3'];
const users = new Map<Role, { id: string; session: string }>();
const fleet = new Set<Role>(['admin', 'technician']);

beforeAll(async () => {
  h = await createApiHarness({
    routes: ({ db, audit }) => [
      {
        plugin: deviceConfigRoutes({
          services: scopedServices(db, (tx) => ({
            config: createDeviceConfigService({ db: tx, audit }),
            commands: createCommandService({ db: tx, audit }),
          })),
        }),
      },
    ],
  });
  const owner = h.t.database.pool;
  const { rows: sites } = await owner.query<{ id: string }>(
    `INSERT INTO sites (name) VALUES ('Roles A'), ('Roles B') RETURNING id`,
  );
  const { rows: made } = await owner.query<{ id: string }>(
    `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', 'bio A'), ($2, 'biodigester', 'bio B'), ($1, 'collection_point', 'cp A') RETURNING id`,
    [sites[0]!.id, sites[1]!.id],
  );
  units.push(...made.map((u) => u.id));
  await owner.query(
    `INSERT INTO devices (id, unit_id, kind) VALUES ($1, $4, 'biodigester'), ($2, $5, 'biodigester'), ($3, $6, 'collection_point')`,
    [...devices, ...units],
  );
  for (const role of roles) {
    const u = await createUserWithPassword(h, { username: `roles-${role}`, role });
    const { sessionId } = await h.sessions.login(
      { username: `roles-${role}`, password: u.password },
      { actorId: 'anonymous', actorRole: 'anonymous', ip: '127.0.0.1' },
    );
    users.set(role, { id: u.user.id, session: sessionId });
  }
});

type Op = 'get' | 'set' | 'command' | 'list' | 'unitDefaults';
const ops: Op[] = ['get', 'set', 'command', 'list', 'unitDefaults'];

function request(op: Op, device: number) {
  const id = devices[device]!;
  switch (op) {
    case 'get':
      return { method: 'GET' as const, url: `/api/v1/devices/${id}/config` };
    case 'set':
      return {
        method: 'PUT' as const,
        url: `/api/v1/devices/${id}/config`,
        payload: { overrides: { reportingIntervalS: 60 } },
      };
    case 'command':
      return {
        method: 'POST' as const,
        url: `/api/v1/devices/${id}/commands`,
        payload: { command: 'diagnostics' },
      };
    case 'list':
      return { method: 'GET' as const, url: `/api/v1/devices/${id}/commands` };
    case 'unitDefaults':
      return {
        method: 'PUT' as const,
        url: `/api/v1/units/${units[device]}/config`,
        payload: {
          kind: device === 2 ? 'collection_point' : 'biodigester',
          defaults: { reportingIntervalS: 120 },
        },
      };
  }
}

async function counts(): Promise<string> {
  const { rows } = await h.t.database.pool.query(
    `SELECT (SELECT count(*) FROM device_configs) AS c, (SELECT count(*) FROM device_commands) AS k,
            (SELECT count(*) FROM device_config_defaults) AS d, (SELECT count(*) FROM device_config_versions) AS v`,
  );
  return JSON.stringify(rows[0]);
}

describe('who may configure and command devices', () => {
  it('only technicians and admins, through the API and in the database, whatever units a user is assigned (generated)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...roles),
        fc.subarray([0, 1, 2]),
        fc.integer({ min: 0, max: 2 }),
        fc.constantFrom(...ops),
        async (role, assigned, device, op) => {
          const user = users.get(role)!;
          await h.users.assignUnits(
            user.id,
            assigned.map((i) => units[i]!),
            systemActor,
          );

          // 1. The route: a token acting as the role.
          const res = await h.app.inject({
            ...request(op, device),
            headers: { authorization: `Bearer ${await h.tokenFor(role)}` },
          });
          const label = `${role} assigned ${assigned.join(',')} ${op} ${devices[device]}: ${res.statusCode} ${res.body.slice(0, 200)}`;
          if (fleet.has(role)) expect(res.statusCode, label).toBeLessThan(300);
          else expect(res.statusCode, label).toBe(403);

          // 2. The database: the same service in the user's own verified scope (a session),
          //    as if a route had forgotten its permission. Nothing may be read or written.
          const before = await counts();
          const run = runScoped<unknown>(
            h.apiDb.db,
            { kind: 'session', secret: user.session },
            (tx) => {
              const db = tx as unknown as Db;
              const actor = { actorId: user.id, actorRole: role };
              const config = createDeviceConfigService({ db, audit: h.audit });
              const commands = createCommandService({ db, audit: h.audit });
              const id = devices[device]!;
              switch (op) {
                case 'get':
                  return config.get(id);
                case 'set':
                  return config.setOverrides(id, { reportingIntervalS: 90 }, actor);
                case 'command':
                  return commands.create(id, { command: 'reboot' }, actor);
                case 'list':
                  return commands.list(id);
                case 'unitDefaults':
                  return config.setDefaults(
                    {
                      kind: device === 2 ? 'collection_point' : 'biodigester',
                      unitId: units[device]!,
                    },
                    { reportingIntervalS: 150 },
                    actor,
                  );
              }
            },
          );
          if (fleet.has(role)) await expect(run, label).resolves.toBeDefined();
          else {
            const outcome = await run.then(
              (v) => ({ ok: true, v }),
              () => ({ ok: false, v: undefined }),
            );
            // A read sees nothing of this feature (no desired state, no commands); a write fails.
            if (outcome.ok && op === 'list') expect(outcome.v, label).toEqual([]);
            else if (outcome.ok && op === 'get')
              expect(outcome.v, label).toMatchObject({ desiredVersion: 0, overrides: {} });
            else expect(outcome.ok, label).toBe(false);
            expect(await counts(), label).toBe(before);
          }
        },
      ),
      { numRuns: 60, seed: 13 },
    );
  }, 240_000);
});
