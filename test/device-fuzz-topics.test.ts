import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downstreamSuffixes, upstreamSuffixes, type UpstreamSuffix } from '../broker/types.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';
import { enrolBeforeGateway } from './enrol-before-start.ts';
import { startGateway, type Gateway } from './gateway.ts';
import { deep, extremeNumberText, hostileString, render, type J } from './hostile-input.ts';
import { httpsRequest } from './https-client.ts';

/**
 * Device fuzz for every topic of the topic policy (broker/types.ts, which broker/topic-policy.ts
 * enforces), not only the ones the fuzz was first written for: the real `thamani start`, one
 * enrolled device over mTLS. Upstream: hostile configuration acknowledgements and command
 * results (wrong types, huge numbers, deep nesting, unknown, other devices' and closed
 * correlation ids, replays). Downstream: subscriptions to every topic, own and other devices'.
 * Each message ends acknowledged and either taken or refused with a clear code on
 * devices/{id}/errors; never INTERNAL_REJECT; the process stays up.
 */
const runs = Number(process.env.FUZZ_RUNS ?? 120);
const seed = Number(process.env.FUZZ_SEED ?? 21);
const deviceId = 'bd-fuzz-topics';
const otherId = 'bd-fuzz-other';
/** Upstream topics fuzzed by test/device-fuzz.test.ts (with their own outcome checks). */
const coveredElsewhere = new Set<string>(['telemetry', 'state', 'cert/csr']);

let t: TestDatabase;
let gateway: Gateway;
let client: mqtt.MqttClient;
const errors: { topic: string; reasons: { code: string; message: string }[] }[] = [];
const ids = { own: [] as string[], other: [] as string[] };

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const idArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant('own') },
  fc.constant('other'),
  fc.uuid().map((u) => JSON.stringify(u)),
  hostileString.map((s) => JSON.stringify(s)),
  extremeNumberText,
  fc.constantFrom('null', 'true', '[]', '{}'),
);
const jsonish = (inner: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 12, arbitrary: inner },
    extremeNumberText,
    hostileString.map((s) => JSON.stringify(s)),
    deep.map((j: J) => render(j, { time: () => 0, seq: () => 0 })),
    fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  );
/** An object with these fields (each maybe missing, maybe twice), written as text. */
const object = (fields: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<string> =>
  fc
    .tuple(
      ...Object.entries(fields).map(([k, v]) =>
        fc.option(
          fc.tuple(v, fc.nat(9)).map(([text, n]) => {
            const twice = n === 0; // a duplicate key now and then
            const one = `${JSON.stringify(k)}:${text}`;
            return twice ? `${one},${one}` : one;
          }),
          { freq: 4 },
        ),
      ),
    )
    .map((parts) => `{${parts.filter((p) => p !== null).join(',')}}`);

/** One generator per upstream topic a device may publish to; a new suffix without one fails the test. */
const upstream: Partial<Record<UpstreamSuffix, fc.Arbitrary<string>>> = {
  'config/reported': object({
    version: jsonish(fc.integer({ min: -2, max: 5 }).map(String)),
    status: jsonish(fc.constantFrom('"applied"', '"rejected"')),
    appliedAt: jsonish(
      fc
        .integer({ min: -40 * 86_400_000, max: 86_400_000 })
        .map((d) => JSON.stringify(new Date(Date.now() + d).toISOString())),
    ),
    reason: jsonish(fc.constant('"out of range"')),
  }),
  'commands/result': object({
    id: idArb,
    status: jsonish(fc.constantFrom('"ok"', '"error"')),
    result: jsonish(fc.constant('{"uptimeS":3600}')),
    error: jsonish(fc.constant('"failed"')),
  }),
};

/** Makes the placeholders real: an open command of this device, or one of the other device. */
const bind = (text: string): string =>
  text
    .replaceAll('"id":own', () => `"id":${JSON.stringify(ids.own.at(-1) ?? 'none')}`)
    .replaceAll('"id":other', () => `"id":${JSON.stringify(ids.other[0] ?? 'none')}`);

async function connect(): Promise<mqtt.MqttClient> {
  const c = await mqtt.connectAsync(gateway.mqttUrl, {
    ...(await device),
    ca: gateway.ca,
    clientId: deviceId,
    protocolVersion: 4,
    reconnectPeriod: 0,
    clean: true,
  });
  c.on('error', () => undefined);
  c.on('message', (topic, payload) => {
    if (topic.endsWith('/errors')) errors.push(JSON.parse(payload.toString()) as never);
  });
  await c.subscribeAsync(`devices/${deviceId}/errors`, { qos: 1 });
  return c;
}

async function newCommand(id: string): Promise<string> {
  const { rows } = await t.database.pool.query<{ id: string }>(
    `INSERT INTO device_commands (device_id, command, expires_at, created_by)
     VALUES ($1, 'diagnostics', now() + interval '1 hour', 'fuzz') RETURNING id`,
    [id],
  );
  return rows[0]!.id;
}

let device: Promise<{ key: string; cert: string }>;
beforeAll(async () => {
  t = await createTestDatabase();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'thamani-fuzz-topics-'));
  const passphrase = 'gateway test passphrase';
  device = enrolBeforeGateway({ t, dataDir, passphrase, deviceId, site: 'Fuzz', unit: 'F2' });
  await device;
  // Another device of the same unit: its command ids are what a hostile device would guess.
  await t.database.pool.query(
    `INSERT INTO devices SELECT (jsonb_populate_record(NULL::devices, to_jsonb(d) || jsonb_build_object('id', $2::text))).* FROM devices d WHERE id = $1`,
    [deviceId, otherId],
  );
  ids.other.push(await newCommand(otherId));
  gateway = await startGateway({
    database: t.name,
    dataDir,
    env: { MQTT_RATE_PER_SECOND: '100000', MQTT_RATE_BURST: '100000' },
    readyTimeoutMs: 90_000,
  });
  client = await until(() => connect().catch(() => undefined), 'the MQTT listener');
}, 150_000);
afterAll(() => {
  client?.end(true);
  gateway?.stop();
});

describe('device fuzz on every topic of the topic policy', () => {
  it('has a generator for every upstream topic', () => {
    const missing = upstreamSuffixes.filter((s) => !coveredElsewhere.has(s) && !upstream[s]);
    expect(missing, 'upstream topics no fuzz generates input for').toEqual([]);
  });

  it(`on ${runs} hostile messages and subscriptions (seed ${seed})`, async () => {
    const codes: Record<string, number> = {};
    const tally = { published: 0, replays: 0, subscribes: 0, taken: 0, refused: 0, closed: 0 };
    const internal: string[] = [];
    const sent: { topic: string; text: string }[] = [];
    /** PUBACK, or the connection closed first (then a security event must say why). */
    const publish = (topic: string, text: string): Promise<'acked' | 'closed'> =>
      new Promise((resolve) => {
        if (!client.connected) return resolve('closed');
        const onClose = (): void => resolve('closed');
        client.once('close', onClose);
        client.publish(topic, Buffer.from(text), { qos: 1 }, (err) => {
          client.off('close', onClose);
          resolve(err ? 'closed' : 'acked');
        });
      });
    const op = fc.oneof(
      {
        weight: 6,
        arbitrary: fc
          .constantFrom(...Object.keys(upstream))
          .chain((s) => upstream[s as UpstreamSuffix]!.map((text) => ({ kind: 'pub', s, text }))),
      },
      { weight: 1, arbitrary: fc.nat().map((i) => ({ kind: 'replay', s: '', text: String(i) })) },
      {
        weight: 2,
        arbitrary: fc
          .tuple(
            fc.constantFrom(...downstreamSuffixes, ...upstreamSuffixes, '#', '+/x', 'x'),
            fc.constantFrom(deviceId, otherId, '+'),
          )
          .map(([s, who]) => ({ kind: 'sub', s, text: who })),
      },
    );
    await fc.assert(
      fc.asyncProperty(op, async ({ kind, s, text }) => {
        if (kind === 'sub') {
          tally.subscribes++;
          const topic = `devices/${text}/${s}`;
          // MQTT.js rejects a SUBACK of 0x80 [MQTT-3.9.3-2]; the code is on the error's packet.
          const code = await client.subscribeAsync(topic, { qos: 1 }).then(
            (g) => g[0]!.qos as number,
            (err: unknown) => {
              const granted = (err as { packet?: { granted?: number[] } }).packet?.granted;
              if (granted) return granted[0]!;
              throw err;
            },
          );
          const mayHave =
            text === deviceId && (downstreamSuffixes as readonly string[]).includes(s);
          expect([topic, code !== 128]).toEqual([topic, mayHave]);
          expect(client.connected, `the connection after SUBSCRIBE ${topic}`).toBe(true);
          if (mayHave && s !== 'errors') await client.unsubscribeAsync(topic);
          return;
        }
        // A fresh open command now and then, so that some results are taken and older ones replayed.
        if (tally.published % 3 === 0) ids.own.push(await newCommand(deviceId));
        const m =
          kind === 'replay' && sent.length > 0
            ? sent[Number(text) % sent.length]!
            : { topic: `devices/${deviceId}/${s}`, text: bind(text) };
        if (kind === 'replay') tally.replays++;
        else sent.push(m);
        tally.published++;
        const before = errors.length;
        const sentAt = new Date(Date.now() - 1000);
        if ((await publish(m.topic, m.text)) === 'closed') {
          tally.closed++;
          await until(
            async () => {
              const { rows } = await t.database.pool.query(
                `SELECT 1 FROM audit_log WHERE action LIKE 'security.%' AND actor_id = $1 AND at >= $2`,
                [`device:${deviceId}`, sentAt],
              );
              return rows.length > 0 ? true : undefined;
            },
            `a security event for the closed connection (${m.topic}: ${m.text.slice(0, 200)})`,
          );
          client.end(true);
          client = await connect();
          return;
        }
        // A marker after it: refused with its own id in the message, so once it is back,
        // everything the fuzzed message caused is too (PUBACKs and handlers in order).
        const marker = crypto.randomUUID();
        expect(
          await publish(`devices/${deviceId}/commands/result`, `{"id":"${marker}","status":"ok"}`),
        ).toBe('acked');
        await until(
          () => (errors.some((e) => e.reasons[0]?.message.includes(marker)) ? true : undefined),
          `the marker after ${m.topic}: ${m.text.slice(0, 200)}`,
        );
        expect(gateway.exit(), `the gateway exited:\n${gateway.log()}`).toBeUndefined();
        const caused = errors
          .slice(before)
          .filter((e) => !e.reasons.some((r) => r.message.includes(marker)));
        if (caused.length === 0) tally.taken++;
        for (const e of caused)
          for (const r of e.reasons) {
            tally.refused++;
            codes[r.code] = (codes[r.code] ?? 0) + 1;
            if (r.code === 'INTERNAL_REJECT') internal.push(`${m.topic}: ${m.text.slice(0, 300)}`);
            expect(r.code).toMatch(/^[A-Z][A-Z_]+$/);
            expect(r.message.length).toBeGreaterThan(0);
          }
      }),
      { numRuns: runs, seed, endOnFailure: true },
    );
    expect((await httpsRequest(`${gateway.apiUrl}/healthz`, { ca: gateway.ca })).status).toBe(200);
    console.info(
      `device fuzz (topics): ${runs} runs (seed ${seed}): ${JSON.stringify(tally)}; codes ${JSON.stringify(codes)}; INTERNAL_REJECT: ${internal.length}`,
    );
    expect(tally.taken).toBeGreaterThan(0);
    expect(tally.refused).toBeGreaterThan(0);
    expect(internal).toEqual([]);
  }, 900_000);
});
