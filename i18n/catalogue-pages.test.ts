import { beforeAll, describe, expect, it } from 'vitest';
import { can, roles, type Role } from '../auth/permissions.ts';
import { createUserWithPassword, systemActor, type ApiHarness } from '../test/api-harness.ts';
import { englishOnlyWords, visibleText, wordsOf } from '../test/catalogue-check.ts';
import { createFullGateway } from '../test/full-gateway.ts';
import { SEEDED_NAMES, seedFleet } from '../test/seed-fleet.ts';

/**
 * Every page, rendered in Swahili for every role that may open it (and the refusal for every
 * role that may not), over a seeded fleet, has no English word: no word that only the English
 * catalogue or English itself uses. The pages are found from the routes the app registers, so
 * a new page is checked without being listed here. The language is the user's choice (their
 * browser asks for English): that the choice wins is checked on the way.
 */

let h: ApiHarness;
const cookies = new Map<Role, string>();
let ids: Awaited<ReturnType<typeof seedFleet>>;
const english = englishOnlyWords();

beforeAll(async () => {
  h = await createFullGateway();
  ids = await seedFleet(h.t.database.pool);
  for (const role of roles) {
    const { user, password } = await createUserWithPassword(h, {
      username: `sw-${role.replace('_', '-')}`,
      role,
    });
    await h.users.update(user.id, { language: 'sw' }, systemActor);
    if (role === 'kitchen_manager') await h.users.assignUnits(user.id, [ids.digester], systemActor);
    if (role === 'collector') await h.users.assignUnits(user.id, [ids.bin], systemActor);
    const res = await h.app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ username: user.username, password }).toString(),
    });
    expect(res.statusCode).toBe(303);
    cookies.set(role, String(res.headers['set-cookie']).split(';')[0]!);
  }
}, 180_000);

/** The English words in a page's visible text, seeded names and the user's name aside. */
function englishIn(html: string): string[] {
  let text = html;
  for (const name of [...SEEDED_NAMES, ...roles.map((r) => `sw-${r.replace('_', '-')}`)])
    text = text.split(name).join(' ');
  // Ids the page echoes (random UUIDs) are not words: "4496be9cb303" holds "be".
  text = text.replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, ' ');
  return visibleText(text)
    .flatMap(wordsOf)
    .filter((w) => english.has(w.toLowerCase()));
}

const isPage = (url: string) =>
  !url.startsWith('/api/') &&
  !url.startsWith('/assets/') &&
  !url.startsWith('/docs') &&
  !url.startsWith('/.well-known/') &&
  !['/metrics', '/healthz', '/readyz', '/logout'].includes(url);

describe('every page in Swahili', () => {
  it('has no English word, for every role, over every route that serves a page', async () => {
    const candidates = [
      ids.digester,
      ids.bin,
      ids.rollout,
      ...ids.devices,
      '00000000-0000-4000-8000-000000000000',
    ];
    const pages = h.app.routePermissions.filter((r) => r.method === 'GET' && isPage(r.url));
    expect(pages.map((p) => p.url)).toEqual(
      expect.arrayContaining(['/digesters', '/digesters/:id', '/fleet', '/fleet/:id', '/login']),
    );
    const problems: string[] = [];
    let rendered = 0;
    for (const route of pages) {
      const urls = /:\w+/.test(route.url)
        ? candidates.map((c) => route.url.replace(/:\w+/g, c))
        : [route.url];
      for (const role of roles) {
        for (const url of urls) {
          const res = await h.app.inject({
            method: 'GET',
            url,
            // Signed in, the user's choice (Swahili) beats the browser's English; a public page
            // (before sign-in) follows the browser.
            headers: {
              cookie: cookies.get(role)!,
              'accept-language': route.permission ? 'en-GB,en;q=0.9' : 'sw-KE',
            },
          });
          if (!String(res.headers['content-type']).startsWith('text/html')) continue;
          rendered++;
          const allowed = !route.permission || can(role, route.permission);
          const label = `${role} GET ${url} -> ${res.statusCode}${allowed ? '' : ' (refused)'}`;
          if (res.statusCode < 300) expect(res.body, label).toMatch(/<html lang="sw"/);
          const words = englishIn(res.body);
          if (words.length > 0) problems.push(`${label}: ${[...new Set(words)].join(', ')}`);
        }
      }
    }
    expect(rendered).toBeGreaterThan(40);
    expect(problems).toEqual([]);
  });

  it('before sign-in follows the browser: the sign-in page in Swahili for sw-KE, English for en', async () => {
    const sw = await h.app.inject({
      url: '/login',
      headers: { 'accept-language': 'sw-KE,sw;q=0.9,en;q=0.5' },
    });
    expect(sw.body).toMatch(/<html lang="sw"/);
    expect(englishIn(sw.body)).toEqual([]);
    const en = await h.app.inject({ url: '/login', headers: { 'accept-language': 'en-US' } });
    expect(en.body).toMatch(/<html lang="en"/);
    expect(en.body).toContain('Sign in');
  });

  it('finds English on a page that has some (the check can fail)', () => {
    expect(englishIn('<p>Hali: <span>needs collection</span></p>')).toEqual([
      'needs',
      'collection',
    ]);
    expect(englishIn('<button aria-label="Open alerts">x</button>')).toEqual(['Open', 'alerts']);
  });
});
