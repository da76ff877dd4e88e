import { beforeAll, describe, expect, it } from 'vitest';
import type { Authenticator } from '../auth/principal.ts';
import { createApiHarness, createUserWithPassword, type ApiHarness } from '../test/api-harness.ts';
import { createDashboardQueries } from './dashboard-repo.ts';
import { dashboardRoutes } from './dashboard-routes.ts';
import { createLiveHub } from './live-hub.ts';

/**
 * A page left open must reach the idle limit (issue 17 §2): the live stream re-checks its
 * session every `liveRecheckMs`, and before, every re-check renewed the session, so an open tab
 * kept it alive for ever. Only user actions renew a session.
 */
const IDLE_MS = 30 * 60_000;
let h: ApiHarness;
let rechecks = 0;

beforeAll(async () => {
  h = await createApiHarness({
    sessionIdleMs: IDLE_MS,
    routes: ({ audit, db, authenticator }) => {
      // No series are read here, so the time-series layout does not matter.
      // The real authenticator, counted, so the test knows a re-check has happened.
      const counted: Authenticator = {
        authenticate: (request, opts) => (
          (rechecks += 1),
          authenticator.authenticate(request, opts)
        ),
      };
      return [
        {
          plugin: dashboardRoutes({
            db,
            audit,
            authenticator: counted,
            queries: createDashboardQueries({ mode: 'partitioned' }),
            hub: createLiveHub(),
            liveRecheckMs: 20,
          }),
        },
      ];
    },
  });
});

async function signIn(username: string): Promise<string> {
  await createUserWithPassword(h, { username, role: 'technician' });
  const res = await h.app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    payload: { username, password: 'correct horse battery staple' },
  });
  return String(res.headers['set-cookie']).split(';')[0]!;
}

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const session = (cookie: string, headers: Record<string, string> = {}) =>
  h.app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: { cookie, ...headers } });

describe('the live stream does not keep a session alive', () => {
  it(
    'a stream left open past the idle limit ends, and the session with it',
    { timeout: 120_000 },
    async () => {
      const cookie = await signIn('open-tab');
      const res = await h.app.inject({
        method: 'GET',
        url: '/api/v1/live',
        headers: { cookie },
        payloadAsStream: true,
      });
      expect(res.statusCode).toBe(200);
      let ended = false;
      const stream = res.stream();
      stream
        .on('end', () => (ended = true))
        .on('close', () => (ended = true))
        .resume();

      // Just inside the idle limit: the re-checks find the session alive, and must not renew it.
      h.clock.advance(IDLE_MS - 60_000);
      const seen = rechecks;
      await until(() => rechecks >= seen + 3, 'three re-checks inside the idle limit');
      expect(ended).toBe(false);

      h.clock.advance(2 * 60_000); // 31 min after the last user action
      await until(() => ended, 'the stream to end');
      const after = await session(cookie);
      expect(after.statusCode).toBe(401);
      expect(after.json().code).toBe('UNAUTHENTICATED');
    },
  );

  it('requests marked as background do not renew; user actions do', async () => {
    const cookie = await signIn('poller');
    h.clock.advance(20 * 60_000);
    expect((await session(cookie, { 'x-thamani-background': '1' })).statusCode).toBe(200);
    h.clock.advance(11 * 60_000); // 31 min after sign-in, 11 after the background poll
    expect((await session(cookie)).statusCode).toBe(401);

    const active = await signIn('clicker');
    h.clock.advance(20 * 60_000);
    expect((await session(active)).statusCode).toBe(200); // a user action
    h.clock.advance(20 * 60_000);
    expect((await session(active)).statusCode).toBe(200);
  });
});
