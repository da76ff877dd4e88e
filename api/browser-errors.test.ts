import { beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword, systemActor, type ApiHarness } from '../test/api-harness.ts';
import { englishOnlyWords, visibleText, wordsOf } from '../test/catalogue-check.ts';
import { createFullGateway } from '../test/full-gateway.ts';
import { SEEDED_NAMES, seedFleet } from '../test/seed-fleet.ts';

/**
 * Every route the app registers (so every link a page renders and every form it posts to), asked
 * with bad input by a Swahili user: from a browser (Accept: text/html) the refusal is a page in
 * Swahili; from a page's own script (its CSRF header) the JSON carries a Swahili `text`; an API
 * client gets the JSON problem body it always had, { code, message, requestId }.
 */

let h: ApiHarness;
let cookie = '';
let csrf = '';
let token = '';
let ids: Awaited<ReturnType<typeof seedFleet>>;
const english = englishOnlyWords();
const USER = 'sw-admin-errors';

beforeAll(async () => {
  h = await createFullGateway();
  ids = await seedFleet(h.t.database.pool);
  const { user, password } = await createUserWithPassword(h, { username: USER, role: 'admin' });
  await h.users.update(user.id, { language: 'sw' }, systemActor);
  const login = await h.app.inject({
    method: 'POST',
    url: '/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username: USER, password }).toString(),
  });
  expect(login.statusCode).toBe(303);
  cookie = String(login.headers['set-cookie']).split(';')[0]!;
  const page = await h.app.inject({ url: '/digesters', headers: { cookie } });
  csrf = /name="csrf-token" content="([^"]+)"/.exec(page.body)![1]!;
  token = await h.tokenFor('admin');
}, 180_000);

function englishIn(html: string): string[] {
  let text = html;
  for (const name of [...SEEDED_NAMES, USER]) text = text.split(name).join(' ');
  text = text.replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, ' ');
  return visibleText(text)
    .flatMap(wordsOf)
    .filter((w) => english.has(w.toLowerCase()));
}

/** Routes a person can reach; streams, docs, assets, probes and signing out are not refusals. */
const walked = (method: string, url: string) =>
  !['HEAD', 'OPTIONS'].includes(method) &&
  !url.startsWith('/docs') &&
  !url.startsWith('/assets/') &&
  // A verification body's pages (token-authenticated, mrv/verifier-routes.ts) are not a user's.
  !url.startsWith('/verifier') &&
  !/logout|signout/.test(url) &&
  !['/api/v1/live', '/metrics', '/healthz', '/readyz'].includes(url);

/** Bad input everywhere a route takes some: a malformed id, a nonsense range, a bad body. */
const badUrl = (url: string, id: string) =>
  `${url.replace(/:\w+/g, id)}?from=2026-13-45&to=yesterday&range=forever&format=xlsx&limit=-1&metrics=nope`;

const browser = {
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  // The user's choice (Swahili) wins over the browser's English.
  'accept-language': 'en-GB,en;q=0.9',
};

describe('a refusal reached from a page', () => {
  it('is a page in Swahili for a Swahili user, on every route, for every bad input', async () => {
    const routes = h.app.routePermissions.filter((r) => walked(r.method, r.url));
    expect(routes.length).toBeGreaterThan(40);
    const problems: string[] = [];
    let refused = 0;
    for (const route of routes) {
      for (const id of ['not-an-id', '00000000-0000-4000-8000-000000000000']) {
        if (id !== 'not-an-id' && !/:\w+/.test(route.url)) continue;
        const res = await h.app.inject({
          method: route.method as 'GET',
          url: badUrl(route.url, id),
          headers: {
            ...browser,
            // Before sign-in (a public form) the browser's language is all there is.
            ...(route.permission ? {} : { 'accept-language': 'sw-KE,sw;q=0.9' }),
            cookie,
            'x-csrf-token': csrf,
            ...(route.method === 'GET'
              ? {}
              : { 'content-type': 'application/x-www-form-urlencoded' }),
          },
          ...(route.method === 'GET' ? {} : { payload: 'bad=%ZZ&from=soon' }),
        });
        if (res.statusCode < 400 || res.statusCode === 401) continue;
        refused++;
        const label = `${route.method} ${route.url} (${id}) -> ${res.statusCode}`;
        if (!String(res.headers['content-type']).startsWith('text/html')) {
          problems.push(
            `${label}: ${String(res.headers['content-type'])} ${res.body.slice(0, 100)}`,
          );
          continue;
        }
        if (!/<html lang="sw"/.test(res.body)) problems.push(`${label}: not lang="sw"`);
        const words = englishIn(res.body);
        if (words.length > 0) problems.push(`${label}: ${[...new Set(words)].join(', ')}`);
      }
    }
    expect(refused).toBeGreaterThan(40);
    expect(problems).toEqual([]);
  }, 300_000);

  it('a download link with too long a range says why, in Swahili, with its numbers', async () => {
    for (const kind of ['readings', 'gas']) {
      const res = await h.app.inject({
        url: `/api/v1/units/${ids.digester}/${kind}?from=2025-01-01&to=2026-03-01`,
        headers: { ...browser, cookie },
      });
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.body).toContain('Huwezi kupakua kipindi hicho');
      expect(res.body).toMatch(kind === 'readings' ? /siku 31 tu/ : /siku 366 tu/);
      expect(englishIn(res.body)).toEqual([]);
    }
    const reversed = await h.app.inject({
      url: `/api/v1/units/${ids.digester}/readings?from=2026-11-02&to=2026-11-01`,
      headers: { ...browser, cookie },
    });
    expect(reversed.body).toContain(
      'tarehe ya mwisho (2026-11-01) iko kabla ya tarehe ya mwanzo (2026-11-02)',
    );
  });

  it("from a page's script: JSON with the Swahili text beside the English message", async () => {
    const res = await h.app.inject({
      url: `/api/v1/units/${ids.digester}/readings?from=2025-01-01&to=2026-03-01`,
      headers: { cookie, 'x-csrf-token': csrf },
    });
    expect(res.statusCode).toBe(400);
    const body = res.json<{ code: string; message: string; text: string }>();
    expect(body.code).toBe('EXPORT_RANGE_TOO_LONG');
    expect(body.message).toMatch(/^Cannot download that range: at most 31 days/);
    expect(body.text).toMatch(/^Huwezi kupakua kipindi hicho: siku 31 tu/);
    expect(englishIn(`<p>${body.text}</p>`)).toEqual([]);
  });

  it('an API client keeps the JSON problem body, whatever its Accept-Language', async () => {
    const routes = h.app.routePermissions.filter((r) => walked(r.method, r.url));
    let checked = 0;
    for (const route of routes) {
      const res = await h.app.inject({
        method: route.method as 'GET',
        url: badUrl(route.url, 'not-an-id'),
        headers: {
          authorization: `Bearer ${token}`,
          'accept-language': 'sw',
          ...(route.method === 'GET' ? {} : { 'content-type': 'application/json' }),
        },
        ...(route.method === 'GET' ? {} : { payload: '{"bad":' }),
      });
      if (res.statusCode < 400 || !route.url.startsWith('/api/')) continue;
      checked++;
      expect(res.headers['content-type'], `${route.method} ${route.url}`).toMatch(
        /^application\/json/,
      );
      expect(Object.keys(res.json()).sort(), `${route.method} ${route.url}`).toEqual([
        'code',
        'message',
        'requestId',
      ]);
    }
    expect(checked).toBeGreaterThan(30);
  });
});
