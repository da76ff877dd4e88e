import { and, desc, eq, inArray, isNull } from 'drizzle-orm';
import { collections, feedings } from '../db/schema/index.ts';
import { asQueryable, type DbExecutor } from '../db/scoped.ts';

/**
 * The field records' SQL (ADR 0007), always run in the caller's scope: row-level security
 * (migration field_security) decides which units, feedings and collections exist for them and
 * whose feedings they may correct. CRUD through drizzle's builder; per-day sums, the fill
 * readings and the display-name joins as SQL text.
 */

export interface FieldUnit {
  id: string;
  name: string;
  site: string;
  kind: 'biodigester' | 'collection_point';
  createdAt: Date;
}

export interface FeedingView {
  id: number;
  unitId: string;
  fedAt: Date;
  kg: number;
  note: string | null;
  recordedBy: string;
  /** The author's name now (actor_display_name: a pseudonym after erasure). */
  recordedByName: string;
  recordedAt: Date;
  correctedAt: Date | null;
  voidedAt: Date | null;
}

export interface CollectionView {
  id: number;
  unitId: string;
  collectedAt: Date;
  weightKg: number;
  note: string | null;
  collectedBy: string;
  collectedByName: string;
  recordedAt: Date;
}

const FEEDING_COLUMNS = `id::int AS id, unit_id AS "unitId", fed_at AS "fedAt", kg, note, recorded_by AS "recordedBy",
  actor_display_name(recorded_by) AS "recordedByName", recorded_at AS "recordedAt", corrected_at AS "correctedAt", voided_at AS "voidedAt"`;
const COLLECTION_COLUMNS = `id::int AS id, unit_id AS "unitId", collected_at AS "collectedAt", weight_kg AS "weightKg", note,
  collected_by AS "collectedBy", actor_display_name(collected_by) AS "collectedByName", recorded_at AS "recordedAt"`;

const dates = <T extends object>(row: T, keys: (keyof T)[]): T => {
  for (const k of keys)
    if (row[k] != null) (row as Record<keyof T, unknown>)[k] = new Date(row[k] as string);
  return row;
};
const feedingOut = (r: FeedingView) => dates(r, ['fedAt', 'recordedAt', 'correctedAt', 'voidedAt']);
const collectionOut = (r: CollectionView) => dates(r, ['collectedAt', 'recordedAt']);

export const fieldRepo = {
  /** A unit of a kind the caller may see, or undefined. */
  async unit(tx: DbExecutor, id: string, kind: FieldUnit['kind']): Promise<FieldUnit | undefined> {
    const { rows } = await asQueryable(tx).query<FieldUnit>(
      `SELECT u.id, u.name, s.name AS site, u.kind, u.created_at AS "createdAt" FROM units u JOIN sites s ON s.id = u.site_id WHERE u.id = $1 AND u.kind = $2`,
      [id, kind],
    );
    return rows[0] && dates(rows[0], ['createdAt']);
  },

  /** Every unit of a kind the caller may see, by site and name. */
  async units(tx: DbExecutor, kind: FieldUnit['kind']): Promise<FieldUnit[]> {
    const { rows } = await asQueryable(tx).query<FieldUnit>(
      `SELECT u.id, u.name, s.name AS site, u.kind, u.created_at AS "createdAt" FROM units u JOIN sites s ON s.id = u.site_id WHERE u.kind = $1 ORDER BY s.name, u.name`,
      [kind],
    );
    return rows.map((r) => dates(r, ['createdAt']));
  },

  async insertFeeding(
    tx: DbExecutor,
    row: { unitId: string; fedAt: Date; kg: number; note: string | null; recordedBy: string },
  ): Promise<number> {
    const [made] = await tx.insert(feedings).values(row).returning({ id: feedings.id });
    return made!.id;
  },

  async feeding(tx: DbExecutor, id: number): Promise<FeedingView | undefined> {
    const { rows } = await asQueryable(tx).query<FeedingView>(
      `SELECT ${FEEDING_COLUMNS} FROM feedings WHERE id = $1`,
      [id],
    );
    return rows[0] && feedingOut(rows[0]);
  },

  /**
   * Locks a feeding for a correction. Row-level security applies the UPDATE policy to a locking
   * read: only the caller's own, standing entry inside the correction window comes back.
   */
  async lockFeeding(tx: DbExecutor, id: number): Promise<boolean> {
    const rows = await tx
      .select({ id: feedings.id })
      .from(feedings)
      .where(and(eq(feedings.id, id), isNull(feedings.voidedAt)))
      .for('update');
    return rows.length === 1;
  },

  async updateFeeding(
    tx: DbExecutor,
    id: number,
    patch: { fedAt?: Date; kg?: number; note?: string | null; correctedAt?: Date; voidedAt?: Date },
  ): Promise<boolean> {
    const rows = await tx
      .update(feedings)
      .set(patch)
      .where(and(eq(feedings.id, id), isNull(feedings.voidedAt)))
      .returning({ id: feedings.id });
    return rows.length === 1;
  },

  /** A digester's feedings at or after `since`, newest first (voided ones included, marked). */
  async feedings(
    tx: DbExecutor,
    unitId: string,
    opts: { since: Date; limit: number },
  ): Promise<FeedingView[]> {
    const { rows } = await asQueryable(tx).query<FeedingView>(
      `SELECT ${FEEDING_COLUMNS} FROM feedings WHERE unit_id = $1 AND fed_at >= $2 ORDER BY fed_at DESC, id DESC LIMIT $3`,
      [unitId, opts.since, opts.limit],
    );
    return rows.map(feedingOut);
  },

  /** Kilograms fed per local calendar day of `timeZone` in [from, to), voided entries left out. */
  async feedPerDay(
    tx: DbExecutor,
    unitId: string,
    from: Date,
    to: Date,
    timeZone: string,
  ): Promise<{ day: string; kg: number }[]> {
    const { rows } = await asQueryable(tx).query<{ day: string; kg: number }>(
      `SELECT to_char((fed_at AT TIME ZONE $4)::date, 'YYYY-MM-DD') AS day, sum(kg)::float8 AS kg
         FROM feedings WHERE unit_id = $1 AND fed_at >= $2 AND fed_at < $3 AND voided_at IS NULL
        GROUP BY 1 ORDER BY 1`,
      [unitId, from, to, timeZone],
    );
    return rows;
  },

  async insertCollection(
    tx: DbExecutor,
    row: {
      unitId: string;
      collectedAt: Date;
      weightKg: number;
      note: string | null;
      collectedBy: string;
    },
  ): Promise<number> {
    const [made] = await tx.insert(collections).values(row).returning({ id: collections.id });
    return made!.id;
  },

  /** A point's collections in [from, to), newest first. */
  async collections(
    tx: DbExecutor,
    unitId: string,
    opts: { from?: Date; to?: Date; limit: number },
  ): Promise<CollectionView[]> {
    const { rows } = await asQueryable(tx).query<CollectionView>(
      `SELECT ${COLLECTION_COLUMNS} FROM collections
        WHERE unit_id = $1 AND ($2::timestamptz IS NULL OR collected_at >= $2) AND ($3::timestamptz IS NULL OR collected_at < $3)
        ORDER BY collected_at DESC, id DESC LIMIT $4`,
      [unitId, opts.from ?? null, opts.to ?? null, opts.limit],
    );
    return rows.map(collectionOut);
  },

  /** The last collection of each of these points (none: absent). */
  async lastCollected(tx: DbExecutor, unitIds: string[]): Promise<Map<string, Date>> {
    if (unitIds.length === 0) return new Map();
    const rows = await tx
      .selectDistinctOn([collections.unitId], {
        unitId: collections.unitId,
        at: collections.collectedAt,
      })
      .from(collections)
      .where(inArray(collections.unitId, unitIds))
      .orderBy(collections.unitId, desc(collections.collectedAt));
    return new Map(rows.map((r) => [r.unitId, r.at]));
  },

  /** The latest fill level of each point (latest_readings: the newest value any of its devices sent). */
  async latestFill(
    tx: DbExecutor,
    unitIds: string[],
  ): Promise<Map<string, { pct: number; ts: Date }>> {
    const { rows } = await asQueryable(tx).query<{ unit_id: string; value: number; ts: string }>(
      `SELECT DISTINCT ON (unit_id) unit_id, value, ts FROM latest_readings
        WHERE unit_id = ANY($1::uuid[]) AND metric = 'fill_level_pct' ORDER BY unit_id, ts DESC`,
      [unitIds],
    );
    return new Map(rows.map((r) => [r.unit_id, { pct: r.value, ts: new Date(r.ts) }]));
  },

  /**
   * Fill readings of these points since `since`, oldest first, for the fill-rate fit. Through
   * scoped_readings: the API role's view of readings on both time-series paths.
   */
  async fillReadings(
    tx: DbExecutor,
    unitIds: string[],
    since: Date,
  ): Promise<Map<string, { t: number; pct: number }[]>> {
    const { rows } = await asQueryable(tx).query<{ unit_id: string; ts: string; pct: number }>(
      `SELECT unit_id, ts, fill_level_pct AS pct FROM scoped_readings
        WHERE unit_id = ANY($1::uuid[]) AND ts >= $2 AND fill_level_pct IS NOT NULL ORDER BY ts`,
      [unitIds, since],
    );
    const out = new Map<string, { t: number; pct: number }[]>();
    for (const r of rows) {
      const list = out.get(r.unit_id) ?? [];
      list.push({ t: new Date(r.ts).getTime(), pct: r.pct });
      out.set(r.unit_id, list);
    }
    return out;
  },
};

export type FieldRepo = typeof fieldRepo;
