import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ApiHarness } from '../test/api-harness.ts';
import { createFullGateway } from '../test/full-gateway.ts';
import { can, roles } from '../auth/permissions.ts';
import { permissionMatrixMarkdown } from '../auth/permissions-doc.ts';

/**
 * Every role × every route: a role lacking the route's permission gets 403 before anything else
 * happens; a role holding it never gets 401/403. Routes without a permission must be on the
 * public list, so a new route cannot be left open by forgetting requirePermission.
 */
const PUBLIC = new Set([
  'POST /api/v1/auth/login',
  'POST /api/v1/auth/password',
  'GET /healthz',
  'GET /readyz',
  'GET /login',
  'POST /login',
  'GET /setup',
  'POST /setup',
  'GET /reset',
  'POST /reset',
  // Enrolment is authenticated by its one-time token; the CA material is published.
  'POST /api/v1/enroll',
  'GET /api/v1/pki/ca.pem',
  'GET /api/v1/pki/chain.pem',
  'GET /api/v1/pki/crl.pem',
  'GET /api/v1/pki/crl.der',
  // Devices pin the firmware-signing public key.
  'GET /api/v1/firmware/signing-key',
  // Verification bodies pin the MRV report signing key.
  'GET /.well-known/thamani-mrv-key',
  // A verifier's pages and downloads: authenticated by its own token, scoped in the database (mrv/verifier-routes.ts).
  'GET /verifier',
  'POST /verifier/session',
  'POST /verifier/signout',
  'GET /verifier/reports/:id',
  'GET /verifier/reports/:id/report.json',
  'GET /verifier/reports/:id/report.html',
  'GET /verifier/reports/:id/readings.csv',
  'GET /verifier/reports/:id/leaf-hashes.bin',
  'GET /verifier/assets/:file',
]);
const isDocs = (url: string) => url === '/docs' || url.startsWith('/docs/');
// The dashboards' static files (script, stylesheet, chart library): public, like any site's.
const isAsset = (url: string) => url.startsWith('/assets/');

let h: ApiHarness;
beforeAll(async () => {
  // The gateway's own routes (PKI, devices, quarantine) are mounted too, as `thamani start` does.
  h = await createFullGateway();
}, 120_000);

function concrete(url: string): string {
  return url.replace(/:[a-zA-Z]+/g, '00000000-0000-4000-8000-000000000000');
}

describe('role × route matrix', () => {
  it('every non-public route declares a permission', () => {
    const open = h.app.routePermissions.filter(
      (r) =>
        r.permission === undefined &&
        r.method !== 'HEAD' &&
        !isDocs(r.url) &&
        !isAsset(r.url) &&
        !PUBLIC.has(`${r.method} ${r.url}`),
    );
    expect(open).toEqual([]);
    expect(h.app.routePermissions.filter((r) => r.permission).length).toBeGreaterThan(15);
  });

  it('refuses or admits each role exactly as auth/permissions.ts says', async () => {
    const seen: string[] = [];
    for (const route of h.app.routePermissions) {
      if (!route.permission) continue;
      const url = concrete(route.url);
      // Pages (outside /api) send a browser to sign in and answer a refusal with a page.
      const page = !route.url.startsWith('/api/') && route.url !== '/metrics';
      // The live stream never ends: take its status and headers, then drop it.
      const stream = route.url === '/api/v1/live';
      const anonymous = await h.app.inject({ method: route.method as 'GET', url });
      if (page)
        expect(
          [anonymous.statusCode, anonymous.headers.location],
          `${route.method} ${route.url} anonymous`,
        ).toEqual([303, '/login']);
      else expect(anonymous.statusCode, `${route.method} ${route.url} anonymous`).toBe(401);
      for (const role of roles) {
        const streaming = stream && can(role, route.permission);
        const res = await h.app.inject({
          method: route.method as 'GET',
          url,
          headers: { authorization: `Bearer ${await h.tokenFor(role)}` },
          payloadAsStream: streaming,
        });
        const body = streaming ? '(stream)' : res.body;
        if (streaming) res.stream().destroy();
        const label = `${role} ${route.method} ${route.url} (${route.permission}) -> ${res.statusCode} ${body.slice(0, 120)}`;
        if (can(role, route.permission)) expect([401, 403], label).not.toContain(res.statusCode);
        else {
          expect(res.statusCode, label).toBe(403);
          if (page) expect(res.headers['content-type'], label).toMatch(/^text\/html/);
          else if (route.method !== 'HEAD')
            expect(res.json<{ code: string }>().code, label).toBe('FORBIDDEN');
        }
        seen.push(`${role}:${route.method}:${route.url}`);
      }
    }
    expect(seen.length).toBe(
      h.app.routePermissions.filter((r) => r.permission).length * roles.length,
    );
  });

  it('every state-changing route, public or not, refuses a cross-site request before anything else (403 CROSS_SITE_REQUEST)', async () => {
    const admin = { authorization: `Bearer ${await h.tokenFor('admin')}` };
    const hostile = [
      { origin: 'https://evil.example' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: 'https://sub.localhost:8443' },
      { origin: 'null' },
    ];
    let checked = 0;
    for (const route of h.app.routePermissions) {
      if (['GET', 'HEAD', 'OPTIONS'].includes(route.method)) continue;
      for (const headers of hostile) {
        const res = await h.app.inject({
          method: route.method as 'POST',
          url: concrete(route.url),
          headers: { ...admin, ...headers },
          payload: {},
        });
        expect(
          [res.statusCode, res.json<{ code: string }>().code],
          `${route.method} ${route.url} ${JSON.stringify(headers)}`,
        ).toEqual([403, 'CROSS_SITE_REQUEST']);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20 * hostile.length);
  });

  it('every response to a signed-in caller, and every /api response, says Cache-Control: no-store', async () => {
    const admin = { authorization: `Bearer ${await h.tokenFor('admin')}` };
    let checked = 0;
    for (const route of h.app.routePermissions) {
      if (isDocs(route.url) || isAsset(route.url)) continue;
      const stream = route.url === '/api/v1/live';
      for (const headers of [admin, {}]) {
        if (!route.url.startsWith('/api/') && Object.keys(headers).length === 0) continue; // a public page or probe, nothing personal
        const res = await h.app.inject({
          method: route.method as 'GET',
          url: concrete(route.url),
          headers,
          payloadAsStream: stream && headers === admin,
        });
        if (stream && headers === admin) res.stream().destroy();
        expect(
          String(res.headers['cache-control']),
          `${route.method} ${route.url} ${headers === admin ? 'admin' : 'anonymous'} -> ${res.statusCode}`,
        ).toMatch(route.url.startsWith('/api/v1/pki/crl') ? /no-cache|no-store/ : /no-store/);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(40);
  });

  it('docs/security-model.md carries the permission matrix exactly as the code has it', async () => {
    const doc = await readFile(new URL('../docs/security-model.md', import.meta.url), 'utf8');
    expect(doc).toContain(permissionMatrixMarkdown());
  });
});

describe('gateway routes as the API role', () => {
  it('work for a technician under row-level security, and each change is audited with before/after', async () => {
    const auth = { authorization: `Bearer ${await h.tokenFor('technician')}` };
    const call = async (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown) => {
      const res = await h.app.inject({
        method,
        url: `/api/v1${url}`,
        headers: auth,
        ...(payload ? { payload } : {}),
      });
      expect(res.statusCode, `${method} ${url}: ${res.body.slice(0, 200)}`).toBeLessThan(300);
      return res.json<Record<string, unknown>>();
    };
    await call('POST', '/sites', { name: 'Matrix Site' });
    await call('POST', '/units', { site: 'Matrix Site', kind: 'biodigester', name: 'D1' });
    await call('POST', '/devices', { id: 'bd-matrix-1', unit: 'D1' });
    await call('POST', '/devices/bd-matrix-1/enrolment-tokens');
    await call('PATCH', '/devices/bd-matrix-1', {
      status: 'suspended',
      labels: { room: 'kitchen' },
    });
    expect((await call('GET', '/devices')).devices).toHaveLength(1);
    await call('GET', '/certificates');
    await call('GET', '/quarantine');
    const { rows } = await h.t.database.pool.query<{
      action: string;
      before: unknown;
      after: unknown;
    }>(`SELECT action, before, after FROM audit_log WHERE actor_role = 'technician' ORDER BY id`);
    expect(rows.map((r) => r.action)).toEqual([
      'site.create',
      'unit.create',
      'device.create',
      'enrolment_token.create',
      'device.status',
      'device.labels',
    ]);
    expect(rows.find((r) => r.action === 'device.status')).toMatchObject({
      before: { status: 'pending' },
      after: { status: 'suspended' },
    });
    // A kitchen manager with no assigned unit sees no device at all, through the same route.
    const km = await h.app.inject({
      method: 'GET',
      url: '/api/v1/devices',
      headers: { authorization: `Bearer ${await h.tokenFor('kitchen_manager')}` },
    });
    expect(km.json()).toEqual({ devices: [] });
  });
});
