import fc from 'fast-check';
import pg from 'pg';
import { Registry } from 'prom-client';
import { registerSecurityEventMetrics } from '../app/gateway-metrics.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../db/client.ts';
import { testAuditPublicKeys, testAuditSigner } from '../test/audit-key.ts';
import { createTestDatabase, testLogger, type TestDatabase } from '../test/db.ts';
import { createAuditLog, createSecurityEvents, verifyAuditChain } from './index.ts';
import {
  Aggregator,
  escapeDeviceText,
  unescapeDeviceText,
  type AggregateRecord,
} from './security-events-fns.ts';

let t: TestDatabase;
/** Security events' own connections, as app/start.ts opens them. */
let own: Database;
beforeAll(async () => {
  t = await createTestDatabase();
  own = createDatabase({
    url: t.url,
    poolMax: 2,
    logger: testLogger,
    applicationName: 'thamani-security-events',
  });
});
afterAll(async () => {
  await own?.close();
});

/** Blocks every insert into audit_log from another session (reads go on): every audit append waits. */
async function blockAuditWrites(): Promise<() => Promise<void>> {
  const c = new pg.Client({ connectionString: t.url });
  await c.connect();
  await c.query('BEGIN');
  await c.query('LOCK TABLE audit_log IN EXCLUSIVE MODE');
  return async () => {
    await c.query('COMMIT');
    await c.end();
  };
}

const limits = { windowMs: 60_000, maxKeys: 50, maxSamples: 4, maxSampleChars: 32 };
const eventArb = fc.record({
  action: fc.constantFrom(
    'security.subscribe_denied',
    'security.publish_denied',
    'security.tls_refused',
  ),
  reason: fc.constantFrom('not_own_topic', 'system_topic', 'CERT_REVOKED'),
  deviceId: fc.option(
    fc.integer({ min: 0, max: 80 }).map((i) => `d${i}`),
    { nil: undefined },
  ),
  certSerial: fc.option(
    fc.integer({ min: 0, max: 80 }).map((i) => `0${i}`),
    { nil: undefined },
  ),
  ourCertificate: fc.boolean(),
  ip: fc.integer({ min: 0, max: 80 }).map((i) => `10.0.0.${i}`),
  target: fc.string({ unit: 'binary', maxLength: 80 }),
});

describe('aggregation of security events (pure)', () => {
  it('accounts for every event exactly once, in bounded memory, with bounded samples', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(eventArb, fc.integer({ min: 0, max: 30_000 })), { maxLength: 600 }),
        (steps) => {
          const agg = new Aggregator(limits);
          const records: AggregateRecord[] = [];
          let now = 0;
          for (const [event, dt] of steps) {
            now += dt;
            records.push(...agg.due(now));
            const first = agg.add(event, now);
            if (first) records.push(first);
            // Two classes of capped keys, and 3 actions × 3 reasons of overflow buckets at most.
            expect(agg.size).toBeLessThanOrEqual(2 * limits.maxKeys + 9);
          }
          records.push(...agg.due(now, true));
          expect(agg.size).toBe(0);
          expect(records.reduce((n, r) => n + r.count, 0)).toBe(steps.length);
          for (const r of records) {
            expect(r.samples.length).toBeLessThanOrEqual(limits.maxSamples);
            for (const s of r.samples)
              expect(s.text.length).toBeLessThanOrEqual(limits.maxSampleChars);
          }
        },
      ),
      { numRuns: 200, seed: 16_3 },
    );
  });

  it('holds at most maxKeys keys under 100,000 refusals from distinct addresses, the rest counted in overflow', () => {
    const agg = new Aggregator(limits);
    let immediate = 0;
    for (let i = 0; i < 100_000; i++)
      if (
        agg.add(
          {
            action: 'security.tls_refused',
            reason: 'NO_CERTIFICATE',
            ip: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`,
            target: '',
          },
          i,
        )
      )
        immediate++;
    expect(agg.size).toBe(limits.maxKeys + 1);
    expect(immediate).toBe(limits.maxKeys);
    // A device's refusal still gets a key, and a record at once: unknown subjects cannot crowd it out.
    expect(
      agg.add(
        {
          action: 'security.tls_refused',
          reason: 'CERT_REVOKED',
          certSerial: '0a',
          ourCertificate: true,
          target: '',
        },
        100_000,
      ),
    ).toMatchObject({ subject: 'cert:0a', count: 1 });
    expect(
      agg.add(
        {
          action: 'security.subscribe_denied',
          reason: 'not_own_topic',
          deviceId: 'd1',
          target: '#',
        },
        100_000,
      ),
    ).toMatchObject({ subject: 'device:d1', count: 1 });
    const overflow = agg.due(100_000, true).find((r) => r.subject === 'overflow');
    expect(overflow).toMatchObject({
      count: 100_000 - limits.maxKeys,
      action: 'security.tls_refused',
      reason: 'NO_CERTIFICATE',
    });
    expect(overflow!.samples.length).toBe(limits.maxSamples);
  });

  it('writes one record per key and window: 10,000 refused filters from one device are two records', () => {
    const agg = new Aggregator(limits);
    const out: AggregateRecord[] = [];
    for (let i = 0; i < 10_000; i++) {
      const first = agg.add(
        {
          action: 'security.subscribe_denied',
          reason: 'not_own_topic',
          deviceId: 'd1',
          target: `devices/other-${i}/#`,
        },
        i,
      );
      if (first) out.push(first);
    }
    out.push(...agg.due(60_000));
    expect(out.map((r) => r.count)).toEqual([1, 9_999]);
    expect(agg.due(120_000)).toEqual([]); // a quiet window writes nothing, and forgets the key
    expect(agg.size).toBe(0);
  });
});

describe('device text at the store boundary', () => {
  it('escapes reversibly and unambiguously, leaving printable text as it is', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
        const e = escapeDeviceText(s);
        expect(unescapeDeviceText(e)).toBe(s);
        // eslint-disable-next-line no-control-regex -- no control character may be left
        expect(e).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
        expect(Buffer.from(e, 'utf8').toString('utf8')).toBe(e); // no lone surrogate left
      }),
      { numRuns: 2000, seed: 16_3 },
    );
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...'abc/+#$ -_.:ä€😀'.split(/(?:)/u)) }),
        (s) => {
          expect(escapeDeviceText(s)).toBe(s);
        },
      ),
      { seed: 16_3 },
    );
    expect(escapeDeviceText('a\u0000b\\u0000')).toBe('a\\u0000b\\\\u0000');
  });

  it('records every generated string (NUL, lone surrogates, controls) and reads it back to what was sent', async () => {
    const events = createSecurityEvents({
      audit: createAuditLog({ db: own.db, signer: testAuditSigner }),
      logger: testLogger,
      config: { windowMs: 60_000, maxKeys: 10_000, maxSampleChars: 1000 },
    });
    const sent = fc.sample(fc.string({ unit: 'binary', minLength: 1, maxLength: 120 }), {
      numRuns: 150,
      seed: 16_3,
    });
    sent.push('devices/x/\u0000', '\ud800', 'a\udc00b', '\u202etxet', '\\u0000');
    // The client id is the device's text too: it names the subject when no device is known.
    sent.forEach((s, i) =>
      events.record({
        action: 'security.connect_refused',
        reason: 'client_id_mismatch',
        ip: `10.1.${i >> 8}.${i & 255}`,
        target: s,
        details: { clientId: s },
      }),
    );
    await events.flush();
    expect(events.counters).toMatchObject({ recordsWritten: sent.length, writeFailures: 0 });
    const { rows } = await t.database.pool.query<{
      target_id: string;
      after: { clientId: string; samples: { text: string }[] };
    }>(
      `SELECT target_id, after FROM audit_log WHERE action = 'security.connect_refused' AND actor_id LIKE 'ip:10.1.%' ORDER BY id`,
    );
    expect(rows.map((r) => unescapeDeviceText(r.target_id))).toEqual(sent);
    expect(rows.map((r) => unescapeDeviceText(r.after.clientId))).toEqual(sent);
    expect(rows.map((r) => unescapeDeviceText(r.after.samples[0]!.text))).toEqual(sent);
    expect((await verifyAuditChain(t.database.db, { publicKeys: testAuditPublicKeys })).ok).toBe(
      true,
    );
  });
});

describe('writing', () => {
  it('never holds more than one connection nor more than queueMax records while the audit store is stuck, and counts what it drops', async () => {
    const events = createSecurityEvents({
      audit: createAuditLog({ db: own.db, signer: testAuditSigner }),
      logger: testLogger,
      config: { windowMs: 60_000, maxKeys: 10_000, queueMax: 100 },
    });
    const release = await blockAuditWrites();
    try {
      for (let i = 0; i < 5000; i++)
        events.record({
          action: 'security.publish_denied',
          reason: 'not_own_topic',
          deviceId: `stuck-${i}`,
          target: `devices/x/${i}`,
        });
      expect(events.counters.events['security.publish_denied']).toBe(5000);
      expect(events.size().queued).toBeLessThanOrEqual(100);
      // One write is in flight (waiting for the lock), up to 100 queued, the rest dropped and counted.
      expect(events.counters.recordsDropped).toBeGreaterThanOrEqual(5000 - 101);
      const busy = await t.database.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'thamani-security-events' AND state <> 'idle'`,
      );
      expect(busy.rows[0]!.n).toBeLessThanOrEqual(1);
    } finally {
      await release();
    }
    await events.flush();
    const c = events.counters;
    expect(c.recordsWritten + c.recordsDropped).toBe(5000);
    expect(c.eventsDropped).toBe(c.recordsDropped);
    const { rows } = await t.database.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_log WHERE actor_id LIKE 'device:stuck-%'`,
    );
    expect(rows[0]!.n).toBe(c.recordsWritten);
    // Prometheus counts every refusal, the dropped ones included.
    const registry = new Registry();
    registerSecurityEventMetrics(registry, events);
    const text = await registry.metrics();
    expect(text).toContain('thamani_security_events_total{action="security.publish_denied"} 5000');
    expect(text).toContain(`thamani_security_events_dropped_total ${c.eventsDropped}`);
    expect(text).toContain(`thamani_security_event_records_written_total ${c.recordsWritten}`);
  });
});
