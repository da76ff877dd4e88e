import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, nodeRoles } from '../config/index.ts';
import { cliRunner } from '../test/cli-runner.ts';
import {
  apiToken,
  clusterDataDir,
  connectDevice,
  enrolDevices,
  openLiveStream,
  publishReading,
  startNode,
  type ClusterNode,
  type Enrolled,
} from '../test/cluster-nodes.ts';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { httpsRequest } from '../test/https-client.ts';
import { waitFor } from '../test/wait.ts';

/**
 * `thamani start --role all|gateway|api` (issue 18): the real processes, an `api` node and a
 * `gateway` node on one database. The api node serves the API and dashboards and opens no device
 * port; the gateway node takes devices and serves no dashboards (only /healthz and /readyz).
 */

const LONG = 300_000;

/** Whether anything accepts TCP connections on 127.0.0.1:port. */
const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

const portOf = (url: string): number => Number(new URL(url).port);

describe('node roles', () => {
  let t: TestDatabase;
  let api: ClusterNode;
  let gateway: ClusterNode;
  let enrolled: Enrolled;
  const dataDir = clusterDataDir();

  beforeAll(async () => {
    t = await createTestDatabase();
    enrolled = await enrolDevices(t, dataDir, ['role-dev']);
    api = await startNode({ name: 'api', t, dataDir, args: ['--role', 'api'] });
    gateway = await startNode({ name: 'gateway', t, dataDir, args: ['--role', 'gateway'] });
  }, LONG);

  afterAll(() => {
    for (const n of [api, gateway]) if (n && !n.exit()) n.stop();
  });

  it('an api node is ready, serves the API and the dashboards, and opens no MQTT or firmware port', async () => {
    const ready = await httpsRequest(`${api.apiUrl}/readyz`, { ca: api.ca });
    expect(ready.status).toBe(200);
    const checks = (JSON.parse(ready.body) as { checks: Record<string, boolean> }).checks;
    expect(checks).not.toHaveProperty('broker');
    expect(checks['cluster-bus']).toBe(true);
    expect(await accepts(portOf(api.mqttUrl))).toBe(false);
    expect(await accepts(Number(api.env.DEVICE_HTTPS_PORT))).toBe(false);
    // The dashboards' sign-in page and the API answer.
    const signIn = await httpsRequest(`${api.apiUrl}/login`, { ca: api.ca });
    expect(signIn.status).toBe(200);
    const token = await apiToken(api, 'admin');
    const devices = await httpsRequest(`${api.apiUrl}/api/v1/devices`, {
      ca: api.ca,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(devices.status).toBe(200);
    expect(devices.body).toContain('role-dev');
  });

  it(
    'a gateway node takes devices and stores their readings, and serves no API or dashboards',
    async () => {
      const ready = await httpsRequest(`${gateway.apiUrl}/readyz`, { ca: gateway.ca });
      expect(ready.status).toBe(200);
      expect((JSON.parse(ready.body) as { checks: Record<string, boolean> }).checks.broker).toBe(
        true,
      );
      for (const p of ['/', '/login', '/api/v1/devices', '/api/v1/live', '/metrics']) {
        const r = await httpsRequest(`${gateway.apiUrl}${p}`, { ca: gateway.ca });
        expect([p, r.status]).toEqual([p, 404]);
        expect((JSON.parse(r.body) as { code: string }).code).toBe('NOT_FOUND');
      }
      const stream = openLiveStream(api, await apiToken(api, 'admin'));
      try {
        const d = await connectDevice(gateway, 'role-dev', enrolled.creds.get('role-dev')!);
        await publishReading(d.client, 'role-dev', 1, { ph: 7.2, temperature_c: 35.25 });
        const { rows } = await t.database.pool.query(
          `SELECT count(*)::int AS n FROM readings WHERE device_id = 'role-dev'`,
        );
        expect(rows).toEqual([{ n: 1 }]);
        // The api node's live page shows what the gateway node ingested (over the cluster bus).
        await waitFor(
          "the gateway node's reading on the api node's stream",
          () =>
            stream.events.some(
              (e) =>
                e.type === 'readings' &&
                (e.data as { readings: { deviceId: string }[] }).readings.some(
                  (r) => r.deviceId === 'role-dev',
                ),
            ),
          Boolean,
          LONG,
        );
        d.client.end(true);
      } finally {
        stream.close();
      }
    },
    LONG,
  );

  it('refuses an unknown role with the list of roles, from the command line and from THAMANI_ROLE', async () => {
    const thamani = cliRunner(() => ({ DATABASE_URL: t.url, THAMANI_ROLE: '' }));
    const r = await thamani('start', '--role', 'broker');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--role <role>.*'broker' is invalid.*all, gateway, api/s);
    const e = cliRunner(() => ({ DATABASE_URL: t.url, THAMANI_ROLE: 'broker' }));
    const r2 = await e('start');
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toMatch(/THAMANI_ROLE: must be one of all, gateway, api/);
  });
});

describe('THAMANI_ROLE', () => {
  it('accepts exactly all, gateway and api, and defaults to all', () => {
    expect(loadConfig({}).role).toBe('all');
    fc.assert(
      fc.property(fc.oneof(fc.constantFrom(...nodeRoles), fc.string({ minLength: 1 })), (role) => {
        if ((nodeRoles as readonly string[]).includes(role))
          expect(loadConfig({ THAMANI_ROLE: role }).role).toBe(role);
        else
          expect(() => loadConfig({ THAMANI_ROLE: role })).toThrow(
            expect.objectContaining({
              name: ConfigError.name,
              message: expect.stringMatching(/THAMANI_ROLE: must be one of all, gateway, api/),
            }),
          );
      }),
    );
  });
});
