import { beforeAll, describe, expect, it } from 'vitest';
import { scopedServices } from '../api/scoped-services.ts';
import { createDashboardQueries } from '../dashboards/dashboard-repo.ts';
import { dashboardPages } from '../dashboards/page-routes.ts';
import { createApiHarness, type ApiHarness } from '../test/api-harness.ts';
import { createCommandService } from './command-service.ts';
import { deviceConfigRoutes } from './config-routes.ts';
import { createDeviceConfigService } from './config-service.ts';

/** The device page's small section: desired vs reported, in sync / pending / rejected (with the device's reason), commands. */
let h: ApiHarness;
let auth: { authorization: string };
const id = 'bd-page-1';

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
      {
        plugin: dashboardPages({ db, queries: createDashboardQueries({ mode: 'partitioned' }) }),
        root: true,
      },
    ],
  });
  const owner = h.t.database.pool;
  const { rows: s } = await owner.query<{ id: string }>(
    `INSERT INTO sites (name) VALUES ('Page') RETURNING id`,
  );
  const { rows: u } = await owner.query<{ id: string }>(
    `INSERT INTO units (site_id, kind, name) VALUES ($1, 'biodigester', 'D1') RETURNING id`,
    [s[0]!.id],
  );
  await owner.query(`INSERT INTO devices (id, unit_id, kind) VALUES ($1, $2, 'biodigester')`, [
    id,
    u[0]!.id,
  ]);
  auth = { authorization: `Bearer ${await h.tokenFor('technician')}` };
});

const page = async (lang = 'en') => {
  const res = await h.app.inject({
    method: 'GET',
    url: `/fleet/${id}`,
    headers: { ...auth, 'accept-language': lang },
  });
  expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
  return res.body;
};

describe('device page', () => {
  it('shows pending, then the device’s refusal with its reason, then in sync; and the commands with their status, in English and Swahili', async () => {
    const put = await h.app.inject({
      method: 'PUT',
      url: `/api/v1/devices/${id}/config`,
      headers: auth,
      payload: {
        overrides: { reportingIntervalS: 60, calibration: { ph: { offset: 0.2, gain: 1 } } },
      },
    });
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json()).toMatchObject({ desiredVersion: 1, status: 'pending' });
    expect(await page()).toContain('data-config-status="pending"');

    const svc = createDeviceConfigService({ db: h.t.database.db, audit: h.audit });
    await svc.report(id, { version: 1, status: 'rejected', reason: 'no <pH> probe' }, new Date());
    const rejected = await page();
    expect(rejected).toContain('data-config-status="rejected"');
    expect(rejected).toContain('The device refused version 1: no &#60;pH&#62; probe');
    expect(await page('sw')).toContain('Kifaa kimekataa toleo 1: no &#60;pH&#62; probe');

    await svc.report(id, { version: 1, status: 'applied' }, new Date());
    const inSync = await page();
    expect(inSync).toContain('data-config-status="in_sync"');
    expect(inSync).toContain('<code>ph</code> ×1 +0.2');

    const cmd = await h.app.inject({
      method: 'POST',
      url: `/api/v1/devices/${id}/commands`,
      headers: auth,
      payload: { command: 'reboot', timeoutS: 600 },
    });
    expect(cmd.statusCode, cmd.body).toBe(201);
    const body = await page();
    expect(body).toContain(`data-command="${cmd.json<{ id: string }>().id}"`);
    expect(body).toContain('waiting for the device');
    expect(await page('sw')).toContain('inasubiri kifaa');

    const bad = await h.app.inject({
      method: 'PUT',
      url: `/api/v1/devices/${id}/config`,
      headers: auth,
      payload: { overrides: { calibration: { fill_level_pct: { offset: 0, gain: 1 } } } },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'CONFIG_INVALID' });
  });
});
