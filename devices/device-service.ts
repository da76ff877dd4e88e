import { randomBytes } from 'node:crypto';
import type { AuditActor, AuditLog } from '../audit/index.ts';
import type { Db } from '../db/client.ts';
import type { Device, Site, Unit } from '../db/schema/index.ts';
import type { DeviceKind } from './metrics.ts';
import { DeviceErrors } from './device-errors.ts';
import { notifyDeviceEvent } from './device-events.ts';
import { deviceRepo } from './device-repo.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const DEVICE_ID = /^[a-z0-9][a-z0-9_-]{2,63}$/;
export type DeviceStatus = Device['status'];

/** bd-/cp- + 10 base32 characters (50 random bits): readable on a label, safe in topics and CNs. */
export function generateDeviceId(kind: DeviceKind): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const bytes = randomBytes(10);
  let id = kind === 'biodigester' ? 'bd-' : 'cp-';
  for (const b of bytes) id += alphabet[b & 31];
  return id;
}

/** Allowed status changes. `pending → active` also happens on the first good MQTT connection. */
export function canTransition(from: DeviceStatus, to: DeviceStatus): boolean {
  if (from === to) return true;
  if (from === 'retired') return false; // final: a retired device gets a new id if it comes back
  if (to === 'pending') return false;
  return true;
}

export function createDeviceService(deps: { db: Db; audit: AuditLog }) {
  const { db, audit } = deps;

  async function findSite(ref: string): Promise<Site> {
    const site = await deviceRepo.siteByIdOrName(db, UUID.test(ref) ? { id: ref } : { name: ref });
    if (!site) throw new DeviceErrors.SiteNotFound(ref);
    return site;
  }

  async function findUnit(ref: string, siteRef?: string): Promise<Unit> {
    const found = await deviceRepo.unitsByIdOrName(
      db,
      UUID.test(ref) ? { id: ref } : { name: ref },
      siteRef ? (await findSite(siteRef)).id : undefined,
    );
    if (found.length !== 1)
      throw new DeviceErrors.UnitNotFound(
        found.length > 1 ? `${ref} (name used at several sites: give --site)` : ref,
      );
    return found[0]!;
  }

  async function get(id: string): Promise<Device> {
    const device = await deviceRepo.device(db, id);
    if (!device) throw new DeviceErrors.DeviceNotFound(id);
    return device;
  }

  return {
    findSite,
    findUnit,
    get,

    async addSite(
      input: { name: string; county?: string | undefined },
      actor: AuditActor,
    ): Promise<Site> {
      return db.transaction(async (tx) => {
        const site = await deviceRepo.insertSite(tx, {
          name: input.name,
          county: input.county ?? null,
        });
        if (!site) throw new DeviceErrors.NameTaken(`A site named "${input.name}" exists`);
        await audit.record(
          { ...actor, action: 'site.create', targetType: 'site', targetId: site.id, after: site },
          tx,
        );
        return site;
      });
    },

    listSites: (): Promise<Site[]> => deviceRepo.sites(db),

    async addUnit(
      input: { site: string; kind: DeviceKind; name: string },
      actor: AuditActor,
    ): Promise<Unit> {
      const site = await findSite(input.site);
      return db.transaction(async (tx) => {
        const unit = await deviceRepo.insertUnit(tx, {
          siteId: site.id,
          kind: input.kind,
          name: input.name,
        });
        if (!unit)
          throw new DeviceErrors.NameTaken(
            `Site "${site.name}" already has a unit named "${input.name}"`,
          );
        await audit.record(
          { ...actor, action: 'unit.create', targetType: 'unit', targetId: unit.id, after: unit },
          tx,
        );
        return unit;
      });
    },

    listUnits: async (filter: { site?: string } = {}): Promise<Unit[]> =>
      deviceRepo.units(db, filter.site ? (await findSite(filter.site)).id : undefined),

    async addDevice(
      input: {
        id?: string | undefined;
        unit: string;
        site?: string | undefined;
        kind?: DeviceKind | undefined;
        labels?: Record<string, string>;
        hardwareRevision?: string | undefined;
      },
      actor: AuditActor,
    ): Promise<Device> {
      const unit = await findUnit(input.unit, input.site);
      const kind = input.kind ?? unit.kind;
      if (kind !== unit.kind) throw new DeviceErrors.KindMismatch(kind, unit.kind, unit.name);
      const id = input.id ?? generateDeviceId(kind);
      if (!DEVICE_ID.test(id)) throw new DeviceErrors.InvalidDeviceId(JSON.stringify(id));
      return db.transaction(async (tx) => {
        const device = await deviceRepo.insertDevice(tx, {
          id,
          unitId: unit.id,
          kind,
          labels: input.labels ?? {},
          hardwareRevision: input.hardwareRevision ?? null,
        });
        if (!device) throw new DeviceErrors.DeviceExists(id);
        await audit.record(
          { ...actor, action: 'device.create', targetType: 'device', targetId: id, after: device },
          tx,
        );
        return device;
      });
    },

    async list(
      filter: { site?: string; unit?: string; status?: DeviceStatus; kind?: DeviceKind } = {},
    ): Promise<(Device & { unitName: string; siteName: string })[]> {
      return deviceRepo.devices(db, {
        siteId: filter.site ? (await findSite(filter.site)).id : undefined,
        unitId: filter.unit ? (await findUnit(filter.unit, filter.site)).id : undefined,
        status: filter.status,
        kind: filter.kind,
      });
    },

    /** Suspend, reactivate or retire. Suspension and retirement cut live sessions at once. */
    async setStatus(id: string, status: DeviceStatus, actor: AuditActor): Promise<Device> {
      return db.transaction(async (tx) => {
        const before = await deviceRepo.lockDevice(tx, id);
        if (!before) throw new DeviceErrors.DeviceNotFound(id);
        if (!canTransition(before.status, status))
          throw new DeviceErrors.InvalidTransition(before.status, status);
        const after = await deviceRepo.updateDevice(tx, id, { status });
        await audit.record(
          {
            ...actor,
            action: 'device.status',
            targetType: 'device',
            targetId: id,
            before: { status: before.status },
            after: { status },
          },
          tx,
        );
        await notifyDeviceEvent(tx, { type: 'device_status', deviceId: id, status });
        return after!;
      });
    },

    /**
     * The device's seq counter restarted (factory reset): the gateway forgets its seq, and its
     * next reading sets the baseline (docs/device-contract.md, "Telemetry"). Audited.
     */
    async resetSequence(id: string, actor: AuditActor): Promise<Device> {
      return db.transaction(async (tx) => {
        const d = await deviceRepo.lockDevice(tx, id);
        if (!d) throw new DeviceErrors.DeviceNotFound(id);
        await audit.record(
          { ...actor, action: 'device.sequence_reset', targetType: 'device', targetId: id },
          tx,
        );
        await notifyDeviceEvent(tx, { type: 'sequence_reset', deviceId: id });
        return d;
      });
    },

    async updateLabels(
      id: string,
      labels: Record<string, string>,
      actor: AuditActor,
    ): Promise<Device> {
      return db.transaction(async (tx) => {
        const before = await deviceRepo.lockDevice(tx, id);
        if (!before) throw new DeviceErrors.DeviceNotFound(id);
        const after = await deviceRepo.updateDevice(tx, id, { labels });
        await audit.record(
          {
            ...actor,
            action: 'device.labels',
            targetType: 'device',
            targetId: id,
            before: { labels: before.labels },
            after: { labels },
          },
          tx,
        );
        return after!;
      });
    },

    /** Latest value of every metric of a device (what it last reported, in the caller's scope). */
    latest: (deviceId: string) => deviceRepo.latestReadings(db, { deviceId }),
  };
}

export type DeviceService = ReturnType<typeof createDeviceService>;
