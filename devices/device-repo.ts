import { and, asc, eq, sql, type SQL } from 'drizzle-orm';
import type { DbExecutor } from '../db/scoped.ts';
import type { Queryable } from '../db/timeseries.ts';
import {
  devices,
  latestReadings,
  sites,
  units,
  type Device,
  type Site,
  type Unit,
} from '../db/schema/index.ts';
import type { DeviceKind } from './metrics.ts';

/**
 * The SQL of the device registry (sites, units, devices) and of what a device last reported.
 * drizzle for the CRUD; each function takes the handle it runs on (the pool's drizzle, or a
 * transaction: the caller's scoped one, so row-level security decides what exists for them).
 */

type DeviceStatus = Device['status'];

export const deviceRepo = {
  siteByIdOrName: async (
    db: DbExecutor,
    ref: { id: string } | { name: string },
  ): Promise<Site | undefined> =>
    (
      await db
        .select()
        .from(sites)
        .where('id' in ref ? eq(sites.id, ref.id) : eq(sites.name, ref.name))
    )[0],

  /** Units matching an id or a name, optionally at one site (a name can be used at several). */
  unitsByIdOrName: (
    db: DbExecutor,
    ref: { id: string } | { name: string },
    siteId?: string,
  ): Promise<Unit[]> => {
    const conditions: SQL[] = ['id' in ref ? eq(units.id, ref.id) : eq(units.name, ref.name)];
    if (siteId) conditions.push(eq(units.siteId, siteId));
    return db
      .select()
      .from(units)
      .where(and(...conditions));
  },

  device: async (db: DbExecutor, id: string): Promise<Device | undefined> =>
    (await db.select().from(devices).where(eq(devices.id, id)))[0],

  /** The device, locked for a change in this transaction. */
  lockDevice: async (db: DbExecutor, id: string): Promise<Device | undefined> =>
    (await db.select().from(devices).where(eq(devices.id, id)).for('update'))[0],

  /** The new site, or undefined when the name is taken. */
  insertSite: async (
    db: DbExecutor,
    input: { name: string; county: string | null },
  ): Promise<Site | undefined> =>
    (await db.insert(sites).values(input).onConflictDoNothing().returning())[0],

  sites: (db: DbExecutor): Promise<Site[]> => db.select().from(sites).orderBy(asc(sites.name)),

  /** The new unit, or undefined when the site has a unit of that name. */
  insertUnit: async (
    db: DbExecutor,
    input: { siteId: string; kind: DeviceKind; name: string },
  ): Promise<Unit | undefined> =>
    (await db.insert(units).values(input).onConflictDoNothing().returning())[0],

  units: (db: DbExecutor, siteId?: string): Promise<Unit[]> =>
    db
      .select()
      .from(units)
      .where(siteId ? eq(units.siteId, siteId) : undefined)
      .orderBy(asc(units.name)),

  /** The new device, or undefined when the id exists. */
  insertDevice: async (
    db: DbExecutor,
    input: {
      id: string;
      unitId: string;
      kind: DeviceKind;
      labels: Record<string, string>;
      hardwareRevision: string | null;
    },
  ): Promise<Device | undefined> =>
    (await db.insert(devices).values(input).onConflictDoNothing().returning())[0],

  async devices(
    db: DbExecutor,
    filter: { siteId?: string; unitId?: string; status?: DeviceStatus; kind?: DeviceKind },
  ): Promise<(Device & { unitName: string; siteName: string })[]> {
    const conditions: SQL[] = [];
    if (filter.siteId) conditions.push(eq(units.siteId, filter.siteId));
    if (filter.unitId) conditions.push(eq(devices.unitId, filter.unitId));
    if (filter.status) conditions.push(eq(devices.status, filter.status));
    if (filter.kind) conditions.push(eq(devices.kind, filter.kind));
    const rows = await db
      .select({ device: devices, unitName: units.name, siteName: sites.name })
      .from(devices)
      .innerJoin(units, eq(units.id, devices.unitId))
      .innerJoin(sites, eq(sites.id, units.siteId))
      .where(conditions.length ? and(...conditions) : undefined)
      .orderBy(asc(sites.name), asc(units.name), asc(devices.id));
    return rows.map((r) => ({ ...r.device, unitName: r.unitName, siteName: r.siteName }));
  },

  updateDevice: async (
    db: DbExecutor,
    id: string,
    set: { status?: DeviceStatus; labels?: Record<string, string> },
  ): Promise<Device | undefined> =>
    (
      await db
        .update(devices)
        .set({ ...set, updatedAt: new Date() })
        .where(eq(devices.id, id))
        .returning()
    )[0],

  /** Latest value of every metric of a device or of all devices of a unit. */
  latestReadings(
    db: DbExecutor,
    filter: { deviceId?: string; unitId?: string },
  ): Promise<{ deviceId: string; metric: string; ts: Date; value: number }[]> {
    const where = filter.deviceId
      ? eq(latestReadings.deviceId, filter.deviceId)
      : filter.unitId
        ? eq(latestReadings.unitId, filter.unitId)
        : undefined;
    return db
      .select({
        deviceId: latestReadings.deviceId,
        metric: latestReadings.metric,
        ts: latestReadings.ts,
        value: latestReadings.value,
      })
      .from(latestReadings)
      .where(where);
  },

  /** The firmware a device reports running (its retained state message); it was seen just now. */
  async setReportedFirmware(q: Queryable, deviceId: string, version: string): Promise<void> {
    await q.query(`UPDATE devices SET firmware_version = $2, last_seen_at = now() WHERE id = $1`, [
      deviceId,
      version,
    ]);
  },

  /** Devices the running broker reports online (it keeps devices.online), by site and unit. */
  connected: async (q: Queryable) =>
    (
      await q.query<{
        id: string;
        kind: string;
        unit: string;
        site: string;
        last_seen_at: Date | null;
      }>(
        `SELECT d.id, d.kind, u.name AS unit, s.name AS site, d.last_seen_at
           FROM devices d JOIN units u ON u.id = d.unit_id JOIN sites s ON s.id = u.site_id
          WHERE d.online ORDER BY s.name, u.name, d.id`,
      )
    ).rows,

  /** Units by name or id, at a site by name or id; either may be null (any). */
  unitsAt: async (q: Queryable, unit: string | null, site: string | null) =>
    (
      await q.query<{ id: string; site_id: string; site: string }>(
        `SELECT u.id, u.site_id, s.name AS site FROM units u JOIN sites s ON s.id = u.site_id
          WHERE ($1::text IS NULL OR u.name = $1 OR u.id::text = $1) AND ($2::text IS NULL OR s.name = $2 OR s.id::text = $2)`,
        [unit, site],
      )
    ).rows,

  /** Units whose name or id is one of `refs`, at a site by name or id (null: any), with their site's name. */
  unitsNamed: async (q: Queryable, refs: string[], site: string | null) =>
    (
      await q.query<{ id: string; name: string; site: string }>(
        `SELECT u.id, u.name, s.name AS site FROM units u JOIN sites s ON s.id = u.site_id
          WHERE (u.name = ANY($1::text[]) OR u.id::text = ANY($1::text[])) AND ($2::text IS NULL OR s.name = $2 OR s.id::text = $2)`,
        [refs, site],
      )
    ).rows,

  /** pg_notify in the caller's transaction: delivered on commit (devices/device-events.ts). */
  async notify(db: DbExecutor, channel: string, payload: string): Promise<void> {
    await db.execute(sql`SELECT pg_notify(${channel}, ${payload})`);
  },

  async listen(q: Queryable, channel: string): Promise<void> {
    // LISTEN takes an identifier, not a parameter: channel is a constant of device-events.ts.
    await q.query(`LISTEN ${channel}`);
  },
};
