import { beforeAll, describe, expect, it } from 'vitest';
import { scopedServices } from '../api/scoped-services.ts';
import {
  createApiHarness,
  createUserWithPassword,
  systemActor,
  type ApiHarness,
} from '../test/api-harness.ts';
import { deviceRoutes } from './device-routes.ts';
import { createDeviceService } from './device-service.ts';

/**
 * `GET /devices/:id/latest`: the last value of every metric a device reported, served by the
 * device service (not quarantine) in the caller's scope: a kitchen manager sees the devices of
 * their own units, and another unit's device has no values for them.
 */
let h: ApiHarness;
const at = new Date('2026-11-20T08:00:00Z');

beforeAll(async () => {
  h = await createApiHarness({
    routes: ({ audit, db }) => [
      {
        plugin: deviceRoutes({
          devices: scopedServices(db, (tx) => createDeviceService({ db: tx, audit })),
        }),
      },
    ],
  });
  const owner = createDeviceService({ db: h.t.database.db, audit: h.audit });
  await owner.addSite({ name: 'Latest Site' }, systemActor);
  for (const [unit, device] of [
    ['kitchen-a', 'bd-latest-a'],
    ['kitchen-b', 'bd-latest-b'],
  ] as const) {
    const u = await owner.addUnit(
      { site: 'Latest Site', kind: 'biodigester', name: unit },
      systemActor,
    );
    await owner.addDevice({ id: device, unit: u.id }, systemActor);
    for (const [metric, value] of [
      ['temperature_c', device.endsWith('a') ? 36.5 : 33],
      ['ph', 7.1],
    ] as const) {
      await h.t.database.pool.query(
        `INSERT INTO latest_readings (device_id, metric, unit_id, ts, value) VALUES ($1, $2, $3, $4, $5)`,
        [device, metric, u.id, at, value],
      );
    }
  }
}, 120_000);

async function latest(headers: Record<string, string>, deviceId: string) {
  const res = await h.app.inject({
    method: 'GET',
    url: `/api/v1/devices/${deviceId}/latest`,
    headers,
  });
  expect(res.statusCode).toBe(200);
  const body = res.json<{
    deviceId: string;
    latest: { metric: string; value: number; ts: string }[];
  }>();
  return {
    deviceId: body.deviceId,
    latest: body.latest.map((l) => `${l.metric}=${l.value}@${new Date(l.ts).toISOString()}`).sort(),
  };
}

describe('GET /devices/:id/latest', () => {
  it('returns the last value of each metric of the device', async () => {
    const admin = { authorization: `Bearer ${await h.tokenFor('admin')}` };
    expect(await latest(admin, 'bd-latest-a')).toEqual({
      deviceId: 'bd-latest-a',
      latest: [`ph=7.1@${at.toISOString()}`, `temperature_c=36.5@${at.toISOString()}`],
    });
    expect((await latest(admin, 'bd-latest-b')).latest).toContain(
      `temperature_c=33@${at.toISOString()}`,
    );
  });

  it('shows a kitchen manager their own unit’s device and nothing of another unit', async () => {
    const { user } = await createUserWithPassword(h, {
      username: 'latest-km',
      role: 'kitchen_manager',
    });
    const [unitA] = (
      await h.t.database.pool.query<{ unit_id: string }>(
        `SELECT unit_id FROM devices WHERE id = 'bd-latest-a'`,
      )
    ).rows;
    await h.users.assignUnits(user.id, [unitA!.unit_id], systemActor);
    const login = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: 'latest-km', password: 'correct horse battery staple' },
    });
    const cookie = String([login.headers['set-cookie']].flat()[0]).split(';')[0]!;
    expect((await latest({ cookie }, 'bd-latest-a')).latest).toHaveLength(2);
    expect((await latest({ cookie }, 'bd-latest-b')).latest).toEqual([]);
  });

  it('needs readings:read', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/devices/bd-latest-a/latest' });
    expect(res.statusCode).toBe(401);
  });
});
