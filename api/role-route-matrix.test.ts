import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApiHarness, type ApiHarness } from '../test/api-harness.ts';
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
]);
const isDocs = (url: string) => url === '/docs' || url.startsWith('/docs/');

let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness();
});

function concrete(url: string): string {
  return url.replace(/:[a-zA-Z]+/g, '00000000-0000-4000-8000-000000000000');
}

describe('role × route matrix', () => {
  it('every non-public route declares a permission', () => {
    const open = h.app.routePermissions.filter((r) => r.permission === undefined && r.method !== 'HEAD' && !isDocs(r.url) && !PUBLIC.has(`${r.method} ${r.url}`));
    expect(open).toEqual([]);
    expect(h.app.routePermissions.filter((r) => r.permission).length).toBeGreaterThan(15);
  });

  it('refuses or admits each role exactly as auth/permissions.ts says', async () => {
    const seen: string[] = [];
    for (const route of h.app.routePermissions) {
      if (!route.permission) continue;
      const url = concrete(route.url);
      const anonymous = await h.app.inject({ method: route.method as 'GET', url });
      expect(anonymous.statusCode, `${route.method} ${route.url} anonymous`).toBe(401);
      for (const role of roles) {
        const res = await h.app.inject({ method: route.method as 'GET', url, headers: { authorization: `Bearer ${await h.tokenFor(role)}` } });
        const label = `${role} ${route.method} ${route.url} (${route.permission}) -> ${res.statusCode} ${res.body.slice(0, 120)}`;
        if (can(role, route.permission)) expect([401, 403], label).not.toContain(res.statusCode);
        else {
          expect(res.statusCode, label).toBe(403);
          if (route.method !== 'HEAD') expect(res.json<{ code: string }>().code, label).toBe('FORBIDDEN');
        }
        seen.push(`${role}:${route.method}:${route.url}`);
      }
    }
    expect(seen.length).toBe(h.app.routePermissions.filter((r) => r.permission).length * roles.length);
  });

  it('docs/security-model.md carries the permission matrix exactly as the code has it', async () => {
    const doc = await readFile(new URL('../docs/security-model.md', import.meta.url), 'utf8');
    expect(doc).toContain(permissionMatrixMarkdown());
  });
});
