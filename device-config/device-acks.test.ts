import fc from 'fast-check';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../audit/index.ts';
import { parseDeviceJson } from '../broker/device-json.ts';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { testLogger } from '../test/db.ts';
import { extremeNumberText, hostileString, render, type J } from '../test/hostile-input.ts';
import { waitFor } from '../test/wait.ts';
import { reportSchema, resultSchema } from './config-fns.ts';
import { createDeviceConfigRuntime, type DeviceConfigRuntime } from './index.ts';

/**
 * The gateway's side of acknowledgements and command results, with a raw MQTT client playing a
 * device that does everything wrong: stale, unknown and replayed versions, results for other
 * devices' commands, commands that expire while the device is offline, and generated hostile
 * payloads (fast-check). None may crash the gateway; each is refused with a reason.
 */

let f: BrokerFixture;
let rt: DeviceConfigRuntime;
const tech = { actorId: 'tech-1', actorRole: 'technician' };

beforeAll(async () => {
  f = await startBrokerFixture(
    {},
    {
      routes: ({ broker, events, t }) => {
        rt = createDeviceConfigRuntime({
          db: t.database.db,
          audit: createAuditLog({ db: t.database.db, signer: testAuditSigner }),
          publisher: broker.publisher,
          events,
          logger: testLogger,
        });
        return {
          handlers: rt.handlers,
          onSubscribed: (id, s) => rt.delivery.onSubscribed(id, s),
          onDelivered: (id, s, p) => rt.delivery.onDelivered(id, s, p),
        };
      },
    },
  );
});
afterAll(async () => {
  rt?.stop();
  await f?.close();
});

interface Received {
  config: { version: number }[];
  commands: { id: string; expiresAt: string }[];
  errors: { topic: string; reasons: { code: string; message: string }[] }[];
}

async function device(
  id: string,
  cert: { key: string; cert: string },
  clean = true,
): Promise<{ c: MqttClient; got: Received }> {
  const c = await f.connect(cert, { clientId: id, clean });
  const got: Received = { config: [], commands: [], errors: [] };
  c.on('message', (topic, payload) => {
    const v = JSON.parse(payload.toString()) as never;
    if (topic.endsWith('/config')) got.config.push(v);
    else if (topic.endsWith('/commands')) got.commands.push(v);
    else if (topic.endsWith('/errors')) got.errors.push(v);
  });
  await c.subscribeAsync(
    [`devices/${id}/config`, `devices/${id}/commands`, `devices/${id}/errors`],
    { qos: 1 },
  );
  return { c, got };
}

const send = (c: MqttClient, id: string, suffix: string, v: unknown) =>
  c.publishAsync(`devices/${id}/${suffix}`, typeof v === 'string' ? v : JSON.stringify(v), {
    qos: 1,
  });

const refusal = (got: Received, code: string, after: number) =>
  waitFor(
    `refusal ${code}`,
    () => got.errors.slice(after).find((e) => e.reasons.some((r) => r.code === code)),
    (e) => e !== undefined,
  );

describe('configuration acknowledgements', () => {
  it('in sync only when the desired version is applied: stale, unknown and replayed acks never mark it, rejections show the reason', async () => {
    const id = 'bd-ack-1';
    const { c, got } = await device(id, await f.addDevice(id));
    await waitFor(
      'version 1 at subscribe',
      () => got.config.at(-1)?.version,
      (v) => v === 1,
    );
    await rt.config.setOverrides(id, { reportingIntervalS: 60 }, tech);
    await waitFor(
      'version 2 on change',
      () => got.config.at(-1)?.version,
      (v) => v === 2,
    );

    await send(c, id, 'config/reported', { version: 1, status: 'applied' });
    expect(await rt.config.get(id)).toMatchObject({ status: 'pending', reportedVersion: 1 });
    await send(c, id, 'config/reported', { version: 2, status: 'rejected', reason: 'no pH probe' });
    expect(await rt.config.get(id)).toMatchObject({
      status: 'rejected',
      rejectReason: 'no pH probe',
    });
    let n = got.errors.length;
    await send(c, id, 'config/reported', { version: 3, status: 'applied' });
    await refusal(got, 'CONFIG_VERSION_UNKNOWN', n);
    expect((await rt.config.get(id)).status).toBe('rejected');

    n = got.errors.length;
    await send(c, id, 'config/reported', {
      version: 2,
      status: 'applied',
      appliedAt: '0000-01-01T00:00:00Z',
    });
    await refusal(got, 'CONFIG_APPLIED_AT_INVALID', n);
    expect((await rt.config.get(id)).status).toBe('rejected');
    await send(c, id, 'config/reported', { version: 2, status: 'applied' });
    expect(await rt.config.get(id)).toMatchObject({ status: 'in_sync', reportedVersion: 2 });
    n = got.errors.length;
    await send(c, id, 'config/reported', { version: 1, status: 'applied' });
    await refusal(got, 'CONFIG_VERSION_STALE', n);
    expect(await rt.config.get(id)).toMatchObject({ status: 'in_sync', reportedVersion: 2 });

    // A newer desired version: the old ack, sent again, does not make it in sync.
    await rt.config.setOverrides(id, { reportingIntervalS: 90 }, tech);
    await send(c, id, 'config/reported', { version: 2, status: 'applied' });
    expect(await rt.config.get(id)).toMatchObject({ status: 'pending', desiredVersion: 3 });
    await c.endAsync();
  });
});

describe('which version made which readings', () => {
  it('the earliest appliedAt claimed for a version wins, whichever acknowledgement is handled first', async () => {
    const id = 'bd-ack-order';
    const { c, got } = await device(id, await f.addDevice(id));
    await waitFor(
      'version 1',
      () => got.config.at(-1)?.version,
      (v) => v === 1,
    );
    const applied = new Date(Date.now() - 5000);
    // The re-sent acknowledgement (no appliedAt: its arrival) handled before the first one.
    await send(c, id, 'config/reported', { version: 1, status: 'applied' });
    await send(c, id, 'config/reported', {
      version: 1,
      status: 'applied',
      appliedAt: applied.toISOString(),
    });
    const spans = await rt.config.calibrationHistory(id, new Date(0), new Date(Date.now() + 1000));
    expect(spans.map((s) => [s.version, s.from.toISOString()])).toEqual([
      [1, applied.toISOString()],
    ]);
    await c.endAsync();
  });
});

describe('commands', () => {
  it('a command to an offline device waits for it until its expiry, never after; results are matched by correlation id', async () => {
    const id = 'bd-cmd-offline';
    const cert = await f.addDevice(id);
    const other = 'bd-cmd-other';
    await f.addDevice(other);
    // A persistent session: the broker queues what is published while the device is away.
    const first = await device(id, cert, false);
    await first.c.endAsync();
    const a = await rt.commands.create(id, { command: 'diagnostics' }, tech);
    const b = await rt.commands.create(id, { command: 'reboot', timeoutS: 10 }, tech);
    const foreign = await rt.commands.create(other, { command: 'reboot' }, tech);
    await waitFor(
      'the short command to expire',
      () => Date.now(),
      (t) => t > b.expires_at.getTime() + 500,
    );

    const { c, got } = await device(id, cert, false);
    // Delivery is in order on one session: once a later command arrives, anything before it has.
    const later = await rt.commands.create(id, { command: 'diagnostics' }, tech);
    await waitFor('the later command', () => got.commands.some((x) => x.id === later.id), Boolean);
    expect(got.commands.some((x) => x.id === a.id)).toBe(true);
    expect(got.commands.filter((x) => x.id === b.id)).toEqual([]);

    let n = got.errors.length;
    await send(c, id, 'commands/result', { id: b.id, status: 'ok' });
    await refusal(got, 'COMMAND_CLOSED', n);
    await rt.delivery.tick();
    expect((await rt.commands.get(b.id)).status).toBe('timed_out');

    await send(c, id, 'commands/result', { id: a.id, status: 'ok', result: { uptimeS: 5 } });
    expect(await rt.commands.get(a.id)).toMatchObject({ status: 'ok', result: { uptimeS: 5 } });
    n = got.errors.length;
    await send(c, id, 'commands/result', { id: a.id, status: 'error', error: 'again' });
    await refusal(got, 'COMMAND_CLOSED', n);
    expect((await rt.commands.get(a.id)).status).toBe('ok');

    n = got.errors.length;
    await send(c, id, 'commands/result', { id: foreign.id, status: 'ok' });
    await refusal(got, 'COMMAND_UNKNOWN', n);
    expect(['pending', 'sent']).toContain((await rt.commands.get(foreign.id)).status);
    n = got.errors.length;
    await send(c, id, 'commands/result', { id: crypto.randomUUID(), status: 'ok' });
    await refusal(got, 'COMMAND_UNKNOWN', n);
    await c.endAsync();
  }, 120_000);
});

const str = (value: string): J => ({ t: 'str', value });
const raw = (text: string): J => ({ t: 'raw', text });
const text: fc.Arbitrary<J> = hostileString.map(str);
const num: fc.Arbitrary<J> = fc.oneof(
  fc.integer({ min: -3, max: 6 }).map((n) => raw(String(n))),
  extremeNumberText.map(raw),
  text,
);
const members = (m: Record<string, fc.Arbitrary<J>>) =>
  fc
    .tuple(
      fc.record(
        Object.fromEntries(Object.entries(m).map(([k, v]) => [k, fc.option(v, { freq: 5 })])),
      ),
      fc.option(fc.tuple(text, num), { freq: 4 }),
      fc.boolean(),
    )
    .map(([r, extra, dup]): J => {
      const e = Object.entries(r).flatMap(([k, v]): [J, J][] => (v ? [[str(k), v]] : []));
      if (extra) e.push(extra);
      if (dup && e.length > 0) e.push(e[0]!);
      return { t: 'obj', entries: e };
    });

describe('hostile acknowledgements and results (generated)', () => {
  it('never crash the gateway: each is acknowledged and either valid or refused with a reason', async () => {
    const id = 'bd-ack-fuzz';
    const { c, got } = await device(id, await f.addDevice(id));
    await waitFor(
      'version 1',
      () => got.config.length,
      (n) => n > 0,
    );
    const own = await rt.commands.create(id, { command: 'diagnostics' }, tech);
    const report = members({
      version: num,
      status: fc.oneof(fc.constantFrom('applied', 'rejected').map(str), text),
      reason: text,
      appliedAt: fc.oneof(
        fc.date({ noInvalidDate: true }).map((d) => str(d.toISOString())),
        text,
      ),
    });
    const result = members({
      id: fc.oneof(fc.constant(str(own.id)), fc.uuid().map(str), text),
      status: fc.oneof(fc.constantFrom('ok', 'error').map(str), text),
      error: text,
      result: members({ a: text, b: num, c: members({ d: text }) }),
    });
    const payload = fc.oneof(
      fc.tuple(
        fc.constant('config/reported'),
        report.map((j) => Buffer.from(render(j, { time: Date.now, seq: () => 1 }))),
      ),
      fc.tuple(
        fc.constant('commands/result'),
        result.map((j) => Buffer.from(render(j, { time: Date.now, seq: () => 1 }))),
      ),
      fc.tuple(
        fc.constantFrom('config/reported', 'commands/result'),
        fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
      ),
      fc.tuple(
        fc.constantFrom('config/reported', 'commands/result'),
        fc.constant(Buffer.alloc(9000, 0x20)),
      ),
    );
    await fc.assert(
      fc.asyncProperty(payload, async ([suffix, bytes]) => {
        // A packet over the broker's maximum closes the connection by design (broker/packet-guard.ts).
        fc.pre(bytes.length < 60_000);
        const before = 0;
        got.errors.length = 0;
        await c.publishAsync(`devices/${id}/${suffix}`, bytes, { qos: 1 }); // PUBACK, not a closed connection
        expect(c.connected).toBe(true);
        const json = parseDeviceJson(bytes);
        const schema = suffix === 'config/reported' ? reportSchema : resultSchema;
        const valid = bytes.length <= 8192 && json.ok && schema.safeParse(json.value).success;
        // A sentinel after it, on the other topic (its handler ran before our PUBACK): whatever
        // this run made the gateway say has arrived once the sentinel's refusal has.
        const other = suffix === 'config/reported' ? 'commands/result' : 'config/reported';
        await send(c, id, other, {});
        const at = await waitFor(
          "the sentinel's refusal",
          () => got.errors.findIndex((e) => e.topic === `devices/${id}/${other}`),
          (i) => i >= 0,
        );
        const said = got.errors.slice(before, at);
        got.errors.length = 0;
        // Exactly one outcome: a malformed one is refused once, with a code and a reason; a
        // well-formed one is stored, or refused once (stale, unknown, closed).
        if (!valid) expect(said).toHaveLength(1);
        else expect(said.length).toBeLessThanOrEqual(1);
        for (const e of said) {
          expect(e.topic).toBe(`devices/${id}/${suffix}`);
          expect(e.reasons[0]!.code).toMatch(/^[A-Z_]+$/);
          expect(e.reasons[0]!.message.length).toBeGreaterThan(0);
        }
        const status = await rt.config.get(id);
        if (status.status === 'in_sync') expect(status.reportedVersion).toBe(status.desiredVersion);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 150), seed: Number(process.env.FUZZ_SEED ?? 21) },
    );
    // Still answering: a good ack after all that.
    await send(c, id, 'config/reported', { version: 1, status: 'applied' });
    expect((await rt.config.get(id)).reportedVersion).toBe(1);
    await c.endAsync();
  }, 240_000);
});
