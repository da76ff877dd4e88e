import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApiHarness, createUserWithPassword, type ApiHarness } from '../test/api-harness.ts';
import { sha256 } from './password-fns.ts';
import { createHashGate, createLoginThrottle } from './throttle.ts';

/**
 * The login throttle as an attacker tries it (issue 17 §2): guesses sent in parallel, the right
 * password inside the burst, and a flood that must not starve other people's sign-ins.
 */
const LIMIT = 4;
let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({
    throttle: { windowMs: 15 * 60_000, maxFailuresPerAccount: LIMIT, maxFailuresPerIp: 10_000 },
  });
});

const login = (username: string, password: string, ip = '198.51.100.7') =>
  h.app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    payload: { username, password },
    remoteAddress: ip,
  });

async function attemptsOf(username: string): Promise<number> {
  const { rows } = await h.t.database.pool.query<{ attempts: number }>(
    `SELECT attempts FROM login_throttle WHERE key_hash = $1`,
    [sha256(`account:${username}`)],
  );
  return rows[0]?.attempts ?? 0;
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('parallel guesses', () => {
  it('evaluates at most the limit, whatever the burst size and where the right password sits in it (property)', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: LIMIT + 1, max: 24 }), fc.nat(), async (burst, at) => {
        const username = `race${n++}`;
        await createUserWithPassword(h, { username, role: 'collector' });
        const rightAt = at % burst;
        const results = await Promise.all(
          Array.from({ length: burst }, (_, i) =>
            login(username, i === rightAt ? 'correct horse battery staple' : `wrong guess ${i} xx`),
          ),
        );
        const codes = results.map((r) => r.statusCode);
        expect(codes.every((c) => c === 200 || c === 401 || c === 429)).toBe(true);
        // Evaluated = a password was hashed and compared: 200 or 401. Never more than the limit
        // of failures: a success clears the account's count (throttle.ts), so a burst in which
        // the right password was evaluated may see up to the limit again after it, never more.
        const successes = codes.filter((c) => c === 200).length;
        const failures = codes.filter((c) => c === 401).length;
        expect(successes).toBeLessThanOrEqual(1);
        expect(failures).toBeLessThanOrEqual(LIMIT * (1 + successes));
        if (successes === 0) expect(failures).toBeLessThanOrEqual(LIMIT);
        for (const r of results.filter((x) => x.statusCode === 429))
          expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
        const { rows } = await h.t.database.pool.query(
          `SELECT count(*)::int AS n FROM audit_log WHERE action = 'security.login_failed' AND target_id = (SELECT id::text FROM users WHERE username = $1)`,
          [username],
        );
        expect(rows[0].n).toBe(failures);
      }),
      { numRuns: 6 },
    );
  });

  it('refuses the right password sent inside the burst once the limit is reserved', async () => {
    await createUserWithPassword(h, { username: 'victim', role: 'admin' });
    const guesses = Promise.all(
      Array.from({ length: 12 }, (_, i) => login('victim', `wrong guess ${i} yy`)),
    );
    await until(
      async () => (await attemptsOf('victim')) >= LIMIT,
      'the guesses to reserve the limit',
    );
    const right = await login('victim', 'correct horse battery staple');
    expect(right.statusCode).toBe(429);
    expect(right.json().code).toBe('LOGIN_THROTTLED');
    const codes = (await guesses).map((r) => r.statusCode);
    expect(codes.filter((c) => c === 401)).toHaveLength(LIMIT);
    expect(codes.filter((c) => c === 429)).toHaveLength(12 - LIMIT);
  });

  it('lets another account sign in while one is flooded, and never answers 500 to a flood of sign-ins', async () => {
    await createUserWithPassword(h, { username: 'bystander', role: 'technician' });
    for (let i = 0; i < 30; i++)
      await createUserWithPassword(h, { username: `crowd${i}`, role: 'collector' });
    const flood = Promise.all([
      ...Array.from({ length: 30 }, (_, i) =>
        login('victim2', `guess ${i} zzzzzz`, `203.0.113.${i}`),
      ),
      ...Array.from({ length: 30 }, (_, i) =>
        login(
          `crowd${i}`,
          i % 2 ? 'correct horse battery staple' : 'not the password',
          `192.0.2.${i}`,
        ),
      ),
    ]);
    const mine = await login('bystander', 'correct horse battery staple', '192.0.2.200');
    const codes = (await flood).map((r) => r.statusCode);
    expect(codes.filter((c) => c >= 500)).toEqual([]);
    expect(mine.statusCode).toBe(200);
    // The crowd's sign-ins were each evaluated (below every limit): right ones in, wrong ones 401.
    expect(codes.slice(30)).toEqual(Array.from({ length: 30 }, (_, i) => (i % 2 ? 200 : 401)));
    expect(h.hashGate.peak()).toBeLessThanOrEqual(2);
  });
});

describe('the throttle itself (real database)', () => {
  it('counts per account (any case) and per IP, says when to retry, and forgets after the window', async () => {
    let now = new Date('2026-01-01T00:00:00Z');
    const t = createLoginThrottle({
      db: h.t.database.db,
      now: () => now,
      windowMs: 60_000,
      maxFailuresPerAccount: 2,
      maxFailuresPerIp: 3,
    });
    expect(await t.reserve('Ann', 'ip1')).toEqual({ allowed: true });
    expect(await t.reserve('ann', 'ip1')).toEqual({ allowed: true });
    expect(await t.reserve('ANN', 'ip2')).toEqual({ allowed: false, retryAfterSeconds: 60 });
    expect(await t.reserve('bob', 'ip1')).toEqual({ allowed: true });
    expect(await t.reserve('carl', 'ip1')).toMatchObject({ allowed: false });
    await t.succeed('bob', 'ip1'); // gives the IP slot back
    expect(await t.reserve('dora', 'ip3')).toEqual({ allowed: true });
    now = new Date(now.getTime() + 60_001);
    expect(await t.reserve('ann', 'ip1')).toEqual({ allowed: true });
  });

  it('the hash gate runs at most N at once and refuses beyond its queue instead of waiting forever', async () => {
    const gate = createHashGate({ maxConcurrent: 2, maxQueue: 3 });
    let running = 0;
    let most = 0;
    const releases: (() => void)[] = [];
    const job = () =>
      gate.run(async () => {
        running += 1;
        most = Math.max(most, running);
        await new Promise<void>((r) => releases.push(r));
        running -= 1;
        return 'done';
      });
    const jobs = Array.from({ length: 5 }, job);
    expect(await job()).toBeUndefined(); // 2 running + 3 queued: the sixth is refused at once
    while (releases.length > 0 || running > 0) {
      await new Promise((r) => setTimeout(r, 1));
      releases.shift()?.();
    }
    expect((await Promise.all(jobs)).map((r) => r?.value)).toEqual(Array(5).fill('done'));
    expect(most).toBe(2);
  });
});
