import type { Pool } from 'pg';
import path from 'node:path';
import { ingestRepo } from '../ingest/ingest-repo.ts';
import type { ApiClient } from './api-client.ts';
import { loadOrEnrol, startDevice, type SimDevice } from './device.ts';
import type { DeviceKeyType } from './keys.ts';
import {
  binReadings,
  digesterReadings,
  initialBin,
  initialDigester,
  stepBin,
  stepDigester,
  type BinState,
  type DigesterState,
} from './physics.ts';
import { mulberry32, seedFor } from './random.ts';

import type { Fault } from './faults.ts';
export { faultNames, type Fault } from './faults.ts';

export interface FleetOptions {
  digesters: number;
  collectionPoints: number;
  durationMs: number | undefined;
  /**
   * Seconds between readings (the device contract's 5 … 86400): set as the desired
   * configuration of the fleet's units (their unit defaults), which every device honours like
   * any configuration, so a technician's own setting for one device still wins over it.
   */
  intervalS: number;
  /** Real milliseconds per configured second (default 1000; tests run faster than life). */
  secondMs?: number;
  /** Simulated seconds per real second for the physics (readings are stamped with real time). */
  speed: number;
  seed: number;
  stateDir: string;
  site: string;
  mqttUrl: string;
  ca: string;
  api: ApiClient;
  faults: ReadonlySet<Fault>;
  /** The key a device makes when it first enrols (default P-256). */
  keyType?: DeviceKeyType;
  onProgress?: (line: string) => void;
  /** How many of these acknowledged readings are missing from the database, per device. */
  checkStored?: (acked: Map<string, string[]>) => Promise<number>;
}

export interface FleetReport {
  devices: number;
  connected: number;
  sent: number;
  acknowledged: number;
  rejectedByReason: Record<string, number>;
  refusedConnections: number;
  faultsInjected: Record<string, string>;
  missingFromDatabase: number | undefined;
  pendingInOutboxes: number;
}

interface Member {
  device: SimDevice;
}

export async function runFleet(o: FleetOptions, stop: Promise<void>): Promise<FleetReport> {
  const members: Member[] = [];
  const start = Date.now();
  const simTime = (now: number): number => start + (now - start) * o.speed;
  // Pinned like a real device's: the key manifests must be signed with.
  const firmwareKeyPem = await o.api.firmwareSigningKey();
  const total = o.digesters + o.collectionPoints;
  const secondMs = o.secondMs ?? 1000;
  const make = async (kind: 'biodigester' | 'collection_point', i: number): Promise<void> => {
    const id = `${kind === 'biodigester' ? 'bd' : 'cp'}-sim-${String(i + 1).padStart(3, '0')}`;
    const unit = `${kind === 'biodigester' ? 'Digester' : 'Bin'} ${i + 1}`;
    await o.api.ensureSiteAndUnit(o.site, unit, kind);
    const dir = path.join(o.stateDir, id);
    const identity = await loadOrEnrol(
      dir,
      id,
      kind,
      { site: o.site, unit },
      o.api,
      o.keyType ?? 'ec',
    );
    // The fleet's interval goes the way a technician's would: as desired configuration (ADR 0013).
    await o.api.setUnitDefaults(id, { reportingIntervalS: o.intervalS });
    const rand = mulberry32(seedFor(o.seed, id));
    let sample: () => Record<string, number | boolean>;
    if (kind === 'biodigester') {
      let s: DigesterState = initialDigester(simTime(start), rand);
      const opts = { load: i % 7 === 6 ? 2.5 : 1, holderLitres: 1500 }; // one in seven is overfed
      sample = () =>
        digesterReadings((s = stepDigester(s, simTime(Date.now()), rand, opts)), opts, rand);
    } else {
      let s: BinState = initialBin(simTime(start), rand);
      const opts = { capacityKg: 120, collectionHours: [10, 16] };
      sample = () => binReadings((s = stepBin(s, simTime(Date.now()), rand, opts)), opts, rand);
    }
    // The device measures on the interval of the configuration it applied (device-agent.ts
    // startSampling), spread over the first interval as real devices are.
    const device = await startDevice({
      identity,
      dir,
      url: o.mqttUrl,
      ca: o.ca,
      rand,
      firmwareKeyPem,
      sample,
      secondMs,
      firstSampleInMs: (members.length * o.intervalS * secondMs) / total,
    });
    members.push({ device });
  };
  for (let i = 0; i < o.digesters; i++) await make('biodigester', i);
  for (let i = 0; i < o.collectionPoints; i++) await make('collection_point', i);

  const injected: Record<string, string> = {};
  const timers: NodeJS.Timeout[] = [];
  const faultAt = (fraction: number, fn: () => void | Promise<void>): void => {
    if (o.durationMs === undefined) return;
    timers.push(
      setTimeout(() => void Promise.resolve(fn()).catch(() => undefined), o.durationMs * fraction),
    );
  };
  const pick = (k: number): Member | undefined => members[k % members.length];
  const id = (m: Member | undefined): string => m?.device.identity.id ?? '-';
  if (o.faults.has('malformed'))
    faultAt(0.2, () => {
      const m = pick(0);
      m?.device.raw(`devices/${id(m)}/telemetry`, '{"seq": 1, "ts": ');
      injected.malformed = id(m);
    });
  if (o.faults.has('out-of-range'))
    faultAt(0.25, () => {
      const m = pick(1);
      m?.device.raw(
        `devices/${id(m)}/telemetry`,
        JSON.stringify({ seq: 0, ts: new Date().toISOString(), readings: { temperature_c: 250 } }),
      );
      injected['out-of-range'] = id(m);
    });
  if (o.faults.has('clock-skew'))
    faultAt(0.3, () => {
      const m = pick(2);
      m?.device.raw(
        `devices/${id(m)}/telemetry`,
        JSON.stringify({
          seq: 0,
          ts: new Date(Date.now() + 3_600_000).toISOString(),
          readings: { battery_v: 3.9 },
        }),
      );
      injected['clock-skew'] = id(m);
    });
  if (o.faults.has('duplicate'))
    faultAt(0.35, () => {
      const m = pick(3);
      const ts = m?.device.stats.ackedTs[0];
      if (m && ts) {
        m.device.raw(
          `devices/${id(m)}/telemetry`,
          JSON.stringify({ seq: 1, ts, readings: { battery_v: 3.9 } }),
        );
        injected.duplicate = id(m);
      }
    });
  if (o.faults.has('cross-topic'))
    faultAt(0.4, () => {
      const m = pick(4);
      const other = pick(5);
      m?.device.raw(
        `devices/${id(other)}/telemetry`,
        JSON.stringify({ seq: 1, ts: new Date().toISOString(), readings: { battery_v: 3.9 } }),
      );
      injected['cross-topic'] = `${id(m)} → ${id(other)}`;
    });
  if (o.faults.has('oversized'))
    faultAt(0.45, () => {
      const m = pick(6);
      m?.device.raw(`devices/${id(m)}/telemetry`, Buffer.alloc(1024 * 1024, 0x20));
      injected.oversized = id(m);
    });
  if (o.faults.has('storm'))
    faultAt(0.5, () => {
      for (const m of members) m.device.drop();
      injected.storm = `${members.length} devices`;
    });
  if (o.faults.has('revoke'))
    faultAt(0.6, async () => {
      const m = pick(7);
      if (m) {
        await o.api.revoke(m.device.identity.serial, 'keyCompromise');
        injected.revoke = id(m);
      }
    });

  const progress = setInterval(() => {
    const t = totals(members);
    o.onProgress?.(
      `devices ${members.length}, connected ${members.filter((m) => m.device.connected()).length}, sent ${t.sent}, acked ${t.acked}, rejected ${Object.values(t.rejected).reduce((a, b) => a + b, 0)}`,
    );
  }, 1000);
  await Promise.race([
    stop,
    ...(o.durationMs !== undefined ? [new Promise((r) => setTimeout(r, o.durationMs))] : []),
  ]);
  for (const t of timers) clearTimeout(t);
  for (const m of members) m.device.stopSampling();
  clearInterval(progress);
  // A moment for publishes in flight to be acknowledged.
  await new Promise((r) => setTimeout(r, 1500));
  const connected = members.filter((m) => m.device.connected()).length;
  for (const m of members) await m.device.stop();
  const t = totals(members);
  const acked = new Map(members.map((m) => [m.device.identity.id, m.device.stats.ackedTs]));
  let pending = 0;
  for (const m of members) pending += await m.device.pendingCount();
  return {
    devices: members.length,
    connected,
    sent: t.sent,
    acknowledged: t.acked,
    rejectedByReason: t.rejected,
    refusedConnections: members.reduce((n, m) => n + m.device.stats.refused, 0),
    faultsInjected: injected,
    missingFromDatabase: o.checkStored ? await o.checkStored(acked) : undefined,
    pendingInOutboxes: pending,
  };
}

/** How many acknowledged (device, ts) pairs are not in `readings`: the report's end-to-end check. */
export function missingFromReadings(pool: Pick<Pool, 'query'>) {
  return async (acked: Map<string, string[]>): Promise<number> => {
    let missing = 0;
    for (const [deviceId, ts] of acked) {
      if (ts.length === 0) continue;
      missing += new Set(ts).size - (await ingestRepo.storedAt(pool, deviceId, ts));
    }
    return missing;
  };
}

function totals(members: Member[]): {
  sent: number;
  acked: number;
  rejected: Record<string, number>;
} {
  const rejected: Record<string, number> = {};
  let sent = 0;
  let acked = 0;
  for (const m of members) {
    sent += m.device.stats.sent;
    acked += m.device.stats.acked;
    for (const [k, v] of Object.entries(m.device.stats.errors))
      rejected[k] = (rejected[k] ?? 0) + v;
  }
  return { sent, acked, rejected };
}
