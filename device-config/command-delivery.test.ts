import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevice } from '../simulators/device.ts';
import { mulberry32 } from '../simulators/random.ts';
import type { BrokerFixture } from '../test/broker-fixture.ts';
import { startDeviceConfigFixture } from '../test/device-config-fixture.ts';
import { waitFor } from '../test/wait.ts';
import type { DeviceConfigRuntime } from './index.ts';

/**
 * A command's status says what happened to it: `pending` until the device acknowledged it
 * (its PUBACK, seen by the broker), then `sent`, then the device's result or `timed_out`.
 * Publishing to a device that is not connected reaches nobody and changes nothing. Real broker
 * (mTLS), real PostgreSQL, real MQTT clients and the simulated device.
 */
let f: BrokerFixture;
let rt: DeviceConfigRuntime;
const tech = { actorId: 'tech-1', actorRole: 'technician' };
/** Every command payload the broker published, by device (the gateway's delivery attempts). */
const published: { topic: string; payload: string }[] = [];

let fixture: Awaited<ReturnType<typeof startDeviceConfigFixture>> | undefined;
beforeAll(async () => {
  fixture = await startDeviceConfigFixture({
    onBroker: (broker) =>
      broker.aedes.on('publish', (packet) => {
        if (packet.topic.endsWith('/commands'))
          published.push({ topic: packet.topic, payload: packet.payload.toString() });
      }),
  });
  ({ f, rt } = fixture);
});
afterAll(() => fixture?.close());

/** Waits until the gateway published this command (its attempt to an offline device). */
const attempted = (deviceId: string, commandId: string) =>
  waitFor(
    `the gateway's publish of ${commandId}`,
    () =>
      published.filter(
        (p) => p.topic === `devices/${deviceId}/commands` && p.payload.includes(commandId),
      ).length,
    (n) => n > 0,
  );

describe('command status for a device that is offline', () => {
  it('stays pending while the device is offline, becomes sent at its PUBACK, then takes its result', async () => {
    const id = 'bd-cmd-offline';
    const cert = await f.addDevice(id);
    const cmd = await rt.commands.create(id, { command: 'diagnostics' }, tech);
    await attempted(id, cmd.id);
    // Published to nobody: not sent.
    expect(await rt.commands.get(cmd.id)).toMatchObject({ status: 'pending', sent_at: null });

    // A device that receives but does not answer yet: its PUBACK alone makes the command sent
    // (a persistent session: Aedes' `ack` names the packet acknowledged).
    const client: MqttClient = await f.connect(cert, { clientId: id, clean: false });
    const received: string[] = [];
    client.on('message', (_t, payload) => received.push(payload.toString()));
    await client.subscribeAsync(`devices/${id}/commands`, { qos: 1 });
    const sent = await waitFor(
      'the command sent (acknowledged by the device)',
      () => rt.commands.get(cmd.id),
      (c) => c.status === 'sent',
    );
    expect(sent.sent_at).not.toBeNull();
    expect(received.some((r) => r.includes(cmd.id))).toBe(true);
    await client.endAsync();

    // The simulated device connects, gets it again (it was not answered) and answers.
    const device = await startDevice({
      identity: { id, kind: 'biodigester', key: cert.key, cert: cert.cert, serial: cert.serialHex },
      dir: mkdtempSync(path.join(os.tmpdir(), 'thamani-cmd-offline-')),
      url: `mqtts://localhost:${f.port}`,
      ca: f.caPem,
      rand: mulberry32(3),
      sample: () => ({ ph: 7, temperature_c: 30 }),
      secondMs: 20,
    });
    try {
      const done = await waitFor(
        'the diagnostics result',
        () => rt.commands.get(cmd.id),
        (c) => c.status === 'ok',
      );
      expect(done.sent_at!.getTime()).toBe(sent.sent_at!.getTime());
      expect(done.result).toMatchObject({ firmware: '1.0.0' });
    } finally {
      device.stopSampling();
      await device.stop();
    }
  }, 120_000);

  it('one that expires while the device is offline is timed out, never sent, and never reaches the device', async () => {
    const id = 'bd-cmd-expired';
    const cert = await f.addDevice(id);
    const cmd = await rt.commands.create(id, { command: 'reboot', timeoutS: 10 }, tech);
    await attempted(id, cmd.id);
    expect((await rt.commands.get(cmd.id)).status).toBe('pending');
    const timedOut = await waitFor(
      'the command timed out',
      async () => {
        await rt.delivery.tick();
        return rt.commands.get(cmd.id);
      },
      (c) => c.status === 'timed_out',
      120_000,
    );
    expect(timedOut.sent_at).toBeNull();

    // A clean session this time: sent when written to the live, subscribed session.
    const client: MqttClient = await f.connect(cert, { clientId: id, clean: true });
    const received: string[] = [];
    client.on('message', (_t, payload) => received.push(payload.toString()));
    await client.subscribeAsync(`devices/${id}/commands`, { qos: 1 });
    // What a subscribe sends goes out at once: a diagnostics command made now arrives, the
    // expired reboot before it must not.
    const later = await rt.commands.create(id, { command: 'diagnostics' }, tech);
    await waitFor(
      'the later command delivered',
      () => rt.commands.get(later.id),
      (c) => c.status === 'sent',
    );
    expect(received.filter((r) => r.includes(cmd.id))).toEqual([]);
    expect(await rt.commands.get(cmd.id)).toMatchObject({ status: 'timed_out', sent_at: null });
    await client.endAsync();
  }, 180_000);
});
