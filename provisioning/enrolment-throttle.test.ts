import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../audit/index.ts';
import { deviceKeyAndCsr } from '../test/device-keys.ts';
import { createEnrolmentAudit, EnrolmentThrottle } from './enrolment-guard.ts';
import { ADMIN_TOKEN, startPkiFixture, type PkiFixture } from '../test/pki-fixture.ts';

describe('EnrolmentThrottle', () => {
  it('counts attempts in flight as failures, so parallel attempts cannot overrun the failure budget', () => {
    const clock = { t: 0 };
    const th = new EnrolmentThrottle(
      { maxAttemptsPerAddress: 100, maxFailuresPerAddress: 3, windowMs: 60_000 },
      () => clock.t,
    );
    const verdicts = Array.from({ length: 10 }, () => th.begin('10.0.0.1'));
    expect(verdicts.filter((v) => v.allowed)).toHaveLength(3);
    expect(verdicts[3]).toEqual({ allowed: false, reason: 'failures', retryAfterSeconds: 1 });
    for (let i = 0; i < 3; i++) th.end('10.0.0.1', false);
    clock.t += 20_000;
    expect(th.begin('10.0.0.1')).toEqual({
      allowed: false,
      reason: 'failures',
      retryAfterSeconds: 40,
    });
    expect(th.begin('::ffff:10.0.0.2').allowed).toBe(true);
    clock.t += 40_001;
    expect(th.begin('10.0.0.1').allowed).toBe(true);
  });

  it('caps all attempts per address, successes included', () => {
    const th = new EnrolmentThrottle(
      { maxAttemptsPerAddress: 5, maxFailuresPerAddress: 5, windowMs: 60_000 },
      () => 0,
    );
    for (let i = 0; i < 5; i++) {
      expect(th.begin('2001:db8::1').allowed).toBe(true);
      th.end('2001:db8::1', true);
    }
    // Same /64.
    expect(th.begin('2001:db8::2')).toMatchObject({ allowed: false, reason: 'attempts' });
  });
});

describe('enrolment audit aggregation', () => {
  it('writes at most 2 × (maxKeys + 1) entries a window whatever the flood, and accounts for every event', async () => {
    const written: AuditEntry[] = [];
    const audit = {
      record: (e: AuditEntry) => (
        written.push(e),
        Promise.resolve({ id: written.length, hash: Buffer.alloc(0) })
      ),
    };
    const agg = createEnrolmentAudit({ audit, maxKeys: 50 });
    for (let i = 0; i < 10_000; i++)
      agg.record({
        action: 'security.enrolment_failed',
        ip: `10.1.${i % 200}.${i % 7}`,
        code: i % 2 ? 'ENROLMENT_TOKEN_INVALID' : 'CSR_MALFORMED',
        requestId: `r${i}`,
      });
    await agg.close();
    expect(written.length).toBeLessThanOrEqual(2 * 51);
    const total = written.reduce(
      (n, e) =>
        n +
        ((e.after as { aggregated?: boolean; count: number }).aggregated
          ? (e.after as { count: number }).count - 1
          : 1),
      0,
    );
    expect(total).toBe(10_000);
  });
});

describe('POST /enroll throttling over HTTPS', () => {
  let f: PkiFixture;
  const MAX_FAILURES = 5;
  beforeAll(async () => {
    f = await startPkiFixture({
      enrolmentLimits: {
        maxAttemptsPerAddress: 1000,
        maxFailuresPerAddress: MAX_FAILURES,
        windowMs: 10 * 60_000,
      },
    });
  });
  afterAll(async () => {
    await f?.app.close();
  });

  function post(
    path: string,
    body: unknown,
    from = '127.0.0.1',
    headers: Record<string, string> = {},
  ): Promise<{ status: number; headers: Record<string, unknown>; json: Record<string, unknown> }> {
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        `${f.baseUrl}${path}`,
        {
          method: 'POST',
          ca: f.ca.rootCertPem,
          localAddress: from,
          agent: false,
          headers: { 'content-type': 'application/json', ...headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              json: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  it('lets at most the failure budget through from one address under parallel requests, answers the rest 429 with Retry-After, and audits them in aggregate', async () => {
    const csr = deviceKeyAndCsr('bd-thr-1').csr;
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        post('/enroll', { token: `enr_guess_${i}`, csr }, '127.0.0.5'),
      ),
    );
    const byStatus = (s: number) => answers.filter((a) => a.status === s);
    expect(byStatus(401).length).toBeLessThanOrEqual(MAX_FAILURES);
    expect(byStatus(401).length).toBeGreaterThan(0);
    expect(byStatus(429).length).toBe(40 - byStatus(401).length);
    for (const a of byStatus(429)) {
      expect(a.json).toMatchObject({ code: 'ENROLMENT_THROTTLED', requestId: expect.any(String) });
      expect(Number(a.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    // Once the failures are counted, even a good token waits: the address is throttled.
    await f.addDevice('bd-thr-1');
    const tokenRes = await post('/devices/bd-thr-1/enrolment-tokens', {}, '127.0.0.1', {
      authorization: `Bearer ${ADMIN_TOKEN}`,
    });
    const token = tokenRes.json.token as string;
    const locked = await post('/enroll', { token, csr }, '127.0.0.5');
    expect(locked.status).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(60);
    // Another address is not affected, and a malformed body is a failure like any other.
    expect((await post('/enroll', { token, csr }, '127.0.0.6')).status).toBe(201);
    expect((await post('/enroll', { nope: true }, '127.0.0.7')).status).toBe(400);

    await f.app.close(); // flushes the aggregated entries
    const { rows } = await f.t.database.pool.query<{
      action: string;
      ip: string;
      after: { count: number; aggregated?: boolean; code?: string; codes?: Record<string, number> };
    }>(
      `SELECT action, host(ip) AS ip, after FROM audit_log WHERE action LIKE 'security.enrolment_%' ORDER BY id`,
    );
    const count = (action: string, ip: string): number =>
      rows
        .filter((r) => r.action === action && r.ip === ip)
        .reduce((n, r) => n + (r.after.aggregated ? r.after.count - 1 : 1), 0);
    expect(count('security.enrolment_failed', '127.0.0.5')).toBe(byStatus(401).length);
    expect(count('security.enrolment_throttled', '127.0.0.5')).toBe(byStatus(429).length + 1);
    expect(rows.filter((r) => r.ip === '127.0.0.5').length).toBeLessThanOrEqual(4);
    expect(
      rows.find((r) => r.action === 'security.enrolment_failed' && r.ip === '127.0.0.5')!.after,
    ).toMatchObject({ code: 'ENROLMENT_TOKEN_INVALID' });
    expect(rows.find((r) => r.ip === '127.0.0.7')?.after).toMatchObject({
      code: 'VALIDATION_FAILED',
    });
  });
});
