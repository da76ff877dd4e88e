import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unescapeDeviceText } from '../audit/index.ts';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';
import { createStateHandler } from './state-handler.ts';

/**
 * Text a device reports about itself (`devices/{id}/state`: its firmware version) is stored
 * whatever it holds, over real mTLS: a NUL byte or a lone surrogate used to make the UPDATE fail,
 * so the message was never acknowledged and the device re-sent it after every reconnect.
 */
let f: BrokerFixture;
beforeAll(async () => {
  f = await startBrokerFixture({}, { state: (session, message) => handler(session, message) });
  const handler = createStateHandler({ pool: f.t.database.pool, publisher: f.broker.publisher });
});
afterAll(async () => {
  await f?.close();
});

describe('device text in state reports', () => {
  it('acknowledges and stores every generated firmware string (NUL, controls, lone surrogates), reversibly', async () => {
    const cert = await f.addDevice('bd-state-text', { status: 'active' });
    const client = await f.connect(cert, { clientId: 'bd-state-text' });
    const versions = fc.sample(fc.string({ unit: 'binary', minLength: 1, maxLength: 64 }), {
      numRuns: 60,
      seed: 16_3,
    });
    versions.push('1.0\u0000', '\ud800', '2.0\u202e');
    try {
      for (const v of versions) {
        await client.publishAsync('devices/bd-state-text/state', JSON.stringify({ firmware: v }), {
          qos: 1,
        });
        const { rows } = await f.t.database.pool.query<{ v: string }>(
          `SELECT firmware_version AS v FROM devices WHERE id = 'bd-state-text'`,
        );
        expect(unescapeDeviceText(rows[0]!.v)).toBe(v);
      }
    } finally {
      await client.endAsync(true);
    }
  });
});
