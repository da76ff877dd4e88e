import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevice, type SimDevice } from '../simulators/device.ts';
import { mulberry32 } from '../simulators/random.ts';
import type { BrokerFixture } from '../test/broker-fixture.ts';
import { startDeviceConfigFixture } from '../test/device-config-fixture.ts';
import { waitFor } from '../test/wait.ts';
import { versionAt } from './config-fns.ts';
import type { DeviceConfigRuntime } from './index.ts';

/**
 * Remote configuration and commands end to end: the real broker (mTLS, topic policy), real
 * PostgreSQL, the simulated device (simulators/device.ts) honouring what it is sent.
 */

let f: BrokerFixture;
let rt: DeviceConfigRuntime;
const tech = { actorId: 'tech-1', actorRole: 'technician' };

let fixture: Awaited<ReturnType<typeof startDeviceConfigFixture>> | undefined;
beforeAll(async () => {
  fixture = await startDeviceConfigFixture();
  ({ f, rt } = fixture);
});
afterAll(() => fixture?.close());

/** Real ms per configured second: a 50 s interval is 1 s here. */
const SECOND_MS = 20;

async function simulated(id: string, before?: () => Promise<unknown>): Promise<SimDevice> {
  const cert = await f.addDevice(id);
  await before?.();
  return startDevice({
    identity: { id, kind: 'biodigester', key: cert.key, cert: cert.cert, serial: cert.serialHex },
    dir: mkdtempSync(path.join(os.tmpdir(), 'thamani-devcfg-')),
    url: `mqtts://localhost:${f.port}`,
    ca: f.caPem,
    rand: mulberry32(7),
    sample: () => ({ ph: 7, temperature_c: 30 }),
    secondMs: SECOND_MS,
  });
}

/** Stops measuring, waits until everything measured is acknowledged (stored), then stops. */
async function settle(device: SimDevice): Promise<void> {
  device.stopSampling();
  await waitFor(
    'every reading made stored',
    async () => (await stored(device.identity.id)).length,
    (n) => n === device.producedBy.size,
  );
  await device.stop();
}

const inSync = (id: string, version: number) =>
  waitFor(
    `${id} in sync at version ${version}`,
    () => rt.config.get(id),
    (v) => v.status === 'in_sync' && v.reportedVersion === version,
  );

async function stored(id: string): Promise<{ ts: Date; ph: number }[]> {
  const { rows } = await f.t.database.pool.query<{ ts: Date; ph: number }>(
    `SELECT ts, ph FROM readings WHERE device_id = $1 ORDER BY ts`,
    [id],
  );
  return rows;
}

describe('remote configuration', () => {
  it('a device gets its configuration at subscribe; a new interval changes its reading rate, a new calibration its values, and calibrationHistory says which version made each stored reading', async () => {
    const id = 'bd-cfg-rate';
    // Set before the device ever connected: it waits in PostgreSQL, not in the broker.
    const device = await simulated(id, () =>
      rt.config.setOverrides(id, { reportingIntervalS: 50 }, tech),
    );
    await inSync(id, 1);
    const applied1 = (await rt.config.calibrationHistory(id, new Date(0), new Date()))[0]!.from;
    await waitFor(
      'four readings at the 50 s interval',
      () => stored(id),
      (r) => r.filter((x) => x.ts >= applied1).length >= 4,
    );

    await rt.config.setOverrides(
      id,
      { reportingIntervalS: 5, calibration: { ph: { offset: 0.5, gain: 1 } } },
      tech,
    );
    await inSync(id, 2);
    const history = await rt.config.calibrationHistory(id, new Date(0), new Date(Date.now() + 1));
    expect(history.map((h) => h.version)).toEqual([1, 2]);
    expect(history[1]!.calibration).toEqual({ ph: { offset: 0.5, gain: 1 } });
    await waitFor(
      'eight readings at the 5 s interval',
      () => stored(id),
      (r) => r.filter((x) => x.ts >= history[1]!.from).length >= 8,
    );
    await settle(device);
    expect((await stored(id)).length).toBe(device.producedBy.size);

    const rows = await stored(id);
    // Each stored reading is attributed to the version that really produced it.
    for (const r of rows)
      expect([r.ts.toISOString(), versionAt(history, r.ts) ?? 0]).toEqual([
        r.ts.toISOString(),
        device.producedBy.get(r.ts.toISOString()),
      ]);
    const gaps = (v: number) =>
      rows
        .map((r, i) => ({ r, prev: rows[i - 1] }))
        .filter(
          ({ r, prev }) =>
            prev && versionAt(history, r.ts) === v && versionAt(history, prev.ts) === v,
        )
        .map(({ r, prev }) => r.ts.getTime() - prev!.ts.getTime());
    expect(new Set(gaps(1))).toEqual(new Set([50 * SECOND_MS]));
    expect(new Set(gaps(2))).toEqual(new Set([5 * SECOND_MS]));
    // The calibration changed the values sent: raw pH 7, then 7 × 1 + 0.5.
    expect(new Set(rows.filter((r) => versionAt(history, r.ts) === 1).map((r) => r.ph))).toEqual(
      new Set([7]),
    );
    expect(new Set(rows.filter((r) => versionAt(history, r.ts) === 2).map((r) => r.ph))).toEqual(
      new Set([7.5]),
    );
  }, 240_000);

  it('unit defaults reach every device of the unit as a new version, overrides win, and each change is audited with before and after', async () => {
    const id = 'bd-cfg-defaults';
    await f.addDevice(id);
    const before = await rt.config.setOverrides(id, { timeSyncServer: 'time.example.org' }, tech);
    const { rows: unit } = await f.t.database.pool.query<{ unit_id: string }>(
      `SELECT unit_id FROM devices WHERE id = $1`,
      [id],
    );
    const out = await rt.config.setDefaults(
      { kind: 'biodigester', unitId: unit[0]!.unit_id },
      { reportingIntervalS: 120, timeSyncServer: 'ntp.unit.example' },
      tech,
    );
    expect(out.changed).toContain(id);
    const after = await rt.config.get(id);
    expect(after.desiredVersion).toBe(before.desiredVersion + 1);
    expect(after.desired).toMatchObject({
      reportingIntervalS: 120,
      timeSyncServer: 'time.example.org',
    });
    expect(after.status).toBe('pending');
    const { rows } = await f.t.database.pool.query<{
      action: string;
      before: unknown;
      after: unknown;
    }>(
      `SELECT action, before, after FROM audit_log WHERE target_id IN ($1, $2) AND action LIKE 'device.config%' ORDER BY id`,
      [id, unit[0]!.unit_id],
    );
    expect(rows.map((r) => r.action)).toEqual([
      'device.config_desired',
      'device.config_overrides',
      'device.config_defaults',
      'device.config_desired',
    ]);
    expect(rows[3]!.before).toMatchObject({ version: before.desiredVersion });
    expect(rows[3]!.after).toMatchObject({ version: before.desiredVersion + 1 });
    await expect(rt.config.setOverrides(id, { reportingIntervalS: 1 }, tech)).rejects.toMatchObject(
      { code: 'CONFIG_INVALID' },
    );
    await expect(
      rt.config.setOverrides(id, { calibration: { fill_level_pct: { offset: 0, gain: 1 } } }, tech),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});

describe('commands', () => {
  it('a reboot makes the simulated device reconnect; diagnostics and resend answer with results stored under their correlation ids', async () => {
    const id = 'bd-cmd-sim';
    const device = await simulated(id);
    await inSync(id, 1);
    const connects = device.stats.connects;
    const reboot = await rt.commands.create(id, { command: 'reboot' }, tech);
    await waitFor(
      'the reboot result',
      () => rt.commands.get(reboot.id),
      (c) => c.status === 'ok',
    );
    await waitFor(
      'the device back after its reboot',
      () => device.stats.connects,
      (n) => n > connects && device.connected(),
    );

    const diag = await rt.commands.create(id, { command: 'diagnostics' }, tech);
    const d = await waitFor(
      'the diagnostics result',
      () => rt.commands.get(diag.id),
      (c) => c.status === 'ok',
    );
    expect(d.result).toMatchObject({ configVersion: 1, firmware: '1.0.0' });

    const since = new Date(Date.now() - 3_600_000).toISOString();
    const readingsBefore = (await stored(id)).length;
    const resend = await rt.commands.create(id, { command: 'resend', since }, tech);
    const r = await waitFor(
      'the resend result',
      () => rt.commands.get(resend.id),
      (c) => c.status === 'ok',
    );
    expect((r.result as { resent: number }).resent).toBeGreaterThanOrEqual(readingsBefore);
    await settle(device);
    // Re-sent readings are duplicates: stored once.
    expect((await stored(id)).length).toBe(device.producedBy.size);
    const { rows } = await f.t.database.pool.query<{ action: string }>(
      `SELECT action FROM audit_log WHERE target_id = $1 AND action LIKE 'device.command%' ORDER BY id`,
      [id],
    );
    expect(rows.map((x) => x.action)).toEqual([
      'device.command_created',
      'device.command_result',
      'device.command_created',
      'device.command_result',
      'device.command_created',
      'device.command_result',
    ]);
  }, 240_000);
});
