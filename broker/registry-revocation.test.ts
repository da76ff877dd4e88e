import fc from 'fast-check';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../test/outage-fixture.ts';
import { startBrokerFixture, type BrokerFixture } from '../test/broker-fixture.ts';

/**
 * The registry lookup at CONNECT is cached (broker/registry-cache.ts). Against the real broker,
 * registry and NOTIFY events: devices reconnect over and over while their certificate is revoked
 * or the device suspended, at a moment fast-check picks among the connects. Once the gateway has
 * heard of the change, no CONNECT of that device is admitted, and no session of it survives.
 */
let f: BrokerFixture;
/** When the gateway heard of a change to the device (its listeners run before ours: registered first). */
const heardAt = new Map<string, number>();
const deviceOfSerial = new Map<string, string>();
beforeAll(async () => {
  f = await startBrokerFixture();
  f.events.on('certificate_revoked', (e) =>
    heardAt.set(deviceOfSerial.get(e.serial) ?? e.deviceId, performance.now()),
  );
  f.events.on('device_status', (e) => heardAt.set(e.deviceId, performance.now()));
});
afterAll(async () => {
  await f?.close();
});

describe('registry cache against revocation and suspension', () => {
  it('admits no CONNECT of a revoked certificate or a suspended device once the gateway has heard of it, however connects and changes interleave', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            change: fc.constantFrom('revoke' as const, 'suspend' as const),
            after: fc.integer({ min: 0, max: 4 }),
          }),
          { minLength: 2, maxLength: 3 },
        ),
        async (plan) => {
          run++;
          const devices = await Promise.all(
            plan.map(async (p, i) => {
              const id = `bd-rcache-${run}-${i}`;
              const cert = await f.addDevice(id, { status: 'active' });
              deviceOfSerial.set(cert.serialHex, id);
              // One connection first, so that the gateway keeps the registry's answer.
              (await f.connect(cert, { clientId: id })).end(true);
              return { id, cert, ...p };
            }),
          );
          const attempts: { id: string; startedAt: number; admitted: boolean }[] = [];
          const open: MqttClient[] = [];
          await Promise.all(
            devices.map(async (d) => {
              const tries: Promise<void>[] = [];
              for (let k = 0; k < 6; k++) {
                if (k === d.after)
                  tries.push(
                    d.change === 'revoke'
                      ? f.revoke(d.cert.serialHex)
                      : f.setStatus(d.id, 'suspended'),
                  );
                const startedAt = performance.now();
                const attempt = f.connect(d.cert, { clientId: d.id }).then(
                  (c) => {
                    open.push(c);
                    attempts.push({ id: d.id, startedAt, admitted: true });
                  },
                  () => void attempts.push({ id: d.id, startedAt, admitted: false }),
                );
                tries.push(attempt);
                // Every other connect waits for the one before: some overlap the change, some follow it.
                if (k % 2 === 1) await attempt;
              }
              await Promise.all(tries);
            }),
          );
          try {
            for (const d of devices) {
              await waitFor(`the gateway hears of ${d.id}'s change`, () =>
                Promise.resolve(heardAt.has(d.id)),
              );
              const late = attempts.filter(
                (a) => a.id === d.id && a.startedAt > heardAt.get(d.id)!,
              );
              expect(late.filter((a) => a.admitted)).toEqual([]);
              // A connect admitted before the event is cut off by it.
              await waitFor(`no session of ${d.id} left`, () =>
                Promise.resolve(!f.broker.clients().some((c) => c.deviceId === d.id)),
              );
            }
            // And a connect now, long after the change, is refused.
            for (const d of devices)
              await expect(
                f.connect(d.cert, { clientId: d.id }).then((c) => c.end(true)),
              ).rejects.toThrow();
          } finally {
            for (const c of open) c.end(true);
          }
        },
      ),
      { numRuns: 3 },
    );
  }, 600_000);
});
