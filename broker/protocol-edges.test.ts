import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refusalCode, type ConnectRefusal } from './broker-errors.ts';
import { decideConnect, decideProtocol, type ConnectLimits } from './identity-fns.ts';
import {
  connectOutcome as outcome,
  rawConnack,
  requireTool,
  run,
  startBrokerFixture,
  type BrokerFixture,
} from '../test/broker-fixture.ts';

/** MQTT 3.1.1 defines CONNACK return codes 0..5 only [MQTT-3.2.2.3]; a refusal is one of 1..5. */
const refusalCodes311 = new Set([1, 2, 3, 4, 5]);

describe('CONNACK codes for MQTT 3.1.1 (decideConnect, decideProtocol)', () => {
  const limits: ConnectLimits = {
    keepaliveMinSeconds: 10,
    keepaliveMaxSeconds: 1200,
    maxClientIdLength: 64,
  };
  const word = fc.string({ minLength: 0, maxLength: 80 });
  const identity = fc.option(
    fc.record({
      deviceId: word,
      unitId: word,
      kind: fc.constantFrom('biodigester' as const, 'collection_point' as const),
      deviceStatus: fc.constantFrom(
        'pending' as const,
        'active' as const,
        'suspended' as const,
        'retired' as const,
      ),
      certStatus: fc.constantFrom('active', 'revoked', 'superseded', 'expired', ''),
      notAfter: fc.date({ noInvalidDate: true }),
    }),
    { nil: undefined },
  );
  const facts = fc.record({
    certCn: fc.option(word, { nil: undefined }),
    clientId: word,
    hasCredentials: fc.boolean(),
    keepalive: fc.integer({ min: 0, max: 65_535 }),
    will: fc.option(fc.record({ topic: word }), { nil: undefined }),
    now: fc.date({ noInvalidDate: true }),
  });

  it('maps every refusal to a code MQTT 3.1.1 defines (1..5)', () => {
    for (const [reason, code] of Object.entries(refusalCode))
      expect({ reason, ok: refusalCodes311.has(code) }).toEqual({ reason, ok: true });
  });

  it('refuses only with codes 1..5, for any CONNECT facts and registry answer', () => {
    fc.assert(
      fc.property(facts, identity, (f, id) => {
        const refusal = decideConnect(f, id, limits);
        if (refusal !== undefined) expect(refusalCodes311.has(refusalCode[refusal])).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses keepalive out of bounds with 2 (identifier rejected), as the device contract says', () => {
    const outOfBounds = fc.oneof(
      fc.integer({ min: 0, max: limits.keepaliveMinSeconds - 1 }),
      fc.integer({ min: limits.keepaliveMaxSeconds + 1, max: 65_535 }),
    );
    fc.assert(
      fc.property(outOfBounds, (keepalive) => {
        const refusal = decideConnect(
          {
            certCn: 'bd-x',
            clientId: 'bd-x',
            hasCredentials: false,
            keepalive,
            will: undefined,
            now: new Date(),
          },
          undefined,
          limits,
        );
        expect(refusal).toBe<ConnectRefusal>('keepalive_out_of_bounds');
        expect(refusalCode[refusal!]).toBe(2);
      }),
    );
  });

  it('accepts protocol level 4 only; any other level is refused with 1 [MQTT-3.1.2-2]', () => {
    expect(decideProtocol(4)).toBeUndefined();
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }).filter((v) => v !== 4),
        (level) => {
          expect(refusalCode[decideProtocol(level)!]).toBe(1);
        },
      ),
    );
  });
});

describe('CONNACK codes over real mTLS', () => {
  let f: BrokerFixture;
  beforeAll(async () => {
    f = await startBrokerFixture({ keepaliveMinSeconds: 10, keepaliveMaxSeconds: 1200 });
  });
  afterAll(async () => {
    await f?.close();
  });

  /** A CONNECT written by hand (MQTT.js will not send keepalive above its own limits), returns the CONNACK code. */
  function rawConnect(
    cert: { key: string; cert: string },
    clientId: string,
    keepalive: number,
    level = 4,
  ): Promise<number | string> {
    const name = level === 3 ? 'MQIsdp' : 'MQTT';
    const id = Buffer.from(clientId);
    const body = Buffer.concat([
      Buffer.from([0, name.length]),
      Buffer.from(name),
      Buffer.from([level, 0x02, keepalive >> 8, keepalive & 0xff, 0, id.length]),
      id,
    ]);
    const connect = Buffer.concat([Buffer.from([0x10, body.length]), body]);
    return rawConnack(f, cert, connect);
  }

  it('answers keepalive 0, below the minimum and above the maximum with CONNACK 2, not 6', async () => {
    const cert = await f.addDevice('bd-edge-keepalive');
    expect(await rawConnect(cert, 'bd-edge-keepalive', 0)).toBe(2);
    expect(await rawConnect(cert, 'bd-edge-keepalive', 5)).toBe(2);
    expect(await rawConnect(cert, 'bd-edge-keepalive', 1201)).toBe(2);
    expect(await rawConnect(cert, 'bd-edge-keepalive', 65_535)).toBe(2);
    expect(
      await outcome(() => f.connect(cert, { clientId: 'bd-edge-keepalive', keepalive: 0 })),
    ).toBe('connack:2');
    // In bounds still connects.
    expect(await rawConnect(cert, 'bd-edge-keepalive', 1200)).toBe(0);
    expect(
      await outcome(() => f.connect(cert, { clientId: 'bd-edge-keepalive', keepalive: 10 })),
    ).toBe('connected');
  });

  it('refuses MQTT 3.1 (protocol level 3) with CONNACK 1 [MQTT-3.1.2-2], from MQTT.js and by hand', async () => {
    const cert = await f.addDevice('bd-edge-v31');
    expect(
      await outcome(() => f.connect(cert, { clientId: 'bd-edge-v31', protocolVersion: 3 })),
    ).toBe('connack:1');
    expect(await rawConnect(cert, 'bd-edge-v31', 30, 3)).toBe(1);
    // Refused before authentication: no session, and the device stays pending.
    expect(f.broker.clients().some((c) => c.deviceId === 'bd-edge-v31')).toBe(false);
    expect(
      (await f.t.database.pool.query(`SELECT status FROM devices WHERE id = 'bd-edge-v31'`)).rows[0]
        .status,
    ).toBe('pending');
    // Security events are written in the background: wait for it (generously), then look.
    const refusals = async (): Promise<unknown[]> =>
      (
        await f.t.database.pool.query<{ after: unknown }>(
          `SELECT after FROM audit_log WHERE action = 'security.connect_refused' AND target_id = 'bd-edge-v31'`,
        )
      ).rows.map((r) => r.after);
    for (
      const deadline = Date.now() + 20_000;
      (await refusals()).length === 0 && Date.now() < deadline;
    )
      await new Promise((r) => setTimeout(r, 50));
    expect(await refusals()).toContainEqual(
      expect.objectContaining({ reason: 'protocol_version_unsupported', returnCode: 1 }),
    );
    // The same device at 3.1.1 is welcome.
    expect(
      await outcome(() => f.connect(cert, { clientId: 'bd-edge-v31', protocolVersion: 4 })),
    ).toBe('connected');
  });

  it('tells mosquitto_pub why: MQTT 3.1 is an unacceptable protocol version, keepalive 5 an identifier rejected', async () => {
    if (!requireTool('mosquitto_pub')) return;
    const cert = await f.addDevice('bd-edge-mosq');
    const files = f.files(cert);
    const pub = (...extra: string[]) =>
      run('mosquitto_pub', [
        '-h',
        '127.0.0.1',
        '-p',
        String(f.port),
        '--cafile',
        files.ca,
        '--cert',
        files.cert,
        '--key',
        files.key,
        '-i',
        'bd-edge-mosq',
        '-q',
        '1',
        '-t',
        'devices/bd-edge-mosq/state',
        '-m',
        '{}',
        ...extra,
      ]);
    const v31 = await pub('-V', 'mqttv31');
    expect(v31.status).not.toBe(0);
    expect(v31.stderr).toMatch(/unacceptable protocol version/i);
    const keepalive = await pub('-k', '5');
    expect(keepalive.status).not.toBe(0);
    expect(keepalive.stderr).toMatch(/identifier rejected/i);
    expect((await pub()).status).toBe(0);
  });
});
