import { sql } from 'drizzle-orm';
import {
  bigint,
  check,
  doublePrecision,
  foreignKey,
  index,
  pgTable,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';
import { unitKind, units } from './core.ts';

/**
 * What went into a biodigester (field/, issue 19): kilograms of food waste at an instant, by the
 * kitchen manager who recorded it. Corrections change `kg`/`fed_at`/`note` in place and a void
 * sets `voided_at`: the old values live in the signed audit entry of each change, which the
 * database requires in the same transaction (migration field_security). The composite key keeps
 * feedings on biodigesters only, as devices keep their unit's kind.
 */
export const feedings = pgTable(
  'feedings',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    unitId: uuid('unit_id').notNull(),
    unitKind: unitKind('unit_kind').notNull().default('biodigester'),
    fedAt: timestamp('fed_at', { withTimezone: true }).notNull(),
    kg: doublePrecision('kg').notNull(),
    note: text('note'),
    /** The actor id of the signed-in user (never a name: erasure, ADR 0008); set from the verified scope. */
    recordedBy: text('recorded_by').notNull(),
    recordedAt: timestamp('recorded_at', { withTimezone: true }).notNull().defaultNow(),
    correctedAt: timestamp('corrected_at', { withTimezone: true }),
    voidedAt: timestamp('voided_at', { withTimezone: true }),
  },
  (t) => [
    foreignKey({
      name: 'feedings_unit_kind_fk',
      columns: [t.unitId, t.unitKind],
      foreignColumns: [units.id, units.kind],
    }).onDelete('restrict'),
    check('feedings_biodigester', sql`${t.unitKind} = 'biodigester'`),
    // The bounds of field/field-fns.ts (FEED_KG_MAX), so that raw SQL cannot store what the API refuses.
    check('feedings_kg', sql`${t.kg} > 0 AND ${t.kg} <= 1000`),
    check('feedings_note', sql`${t.note} IS NULL OR length(${t.note}) <= 500`),
    index('feedings_unit_idx').on(t.unitId, t.fedAt),
  ],
);

/** A collection point emptied: weight taken away, when, by whom (the signed-in collector). Append-only. */
export const collections = pgTable(
  'collections',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    unitId: uuid('unit_id').notNull(),
    unitKind: unitKind('unit_kind').notNull().default('collection_point'),
    collectedAt: timestamp('collected_at', { withTimezone: true }).notNull(),
    weightKg: doublePrecision('weight_kg').notNull(),
    note: text('note'),
    collectedBy: text('collected_by').notNull(),
    recordedAt: timestamp('recorded_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    foreignKey({
      name: 'collections_unit_kind_fk',
      columns: [t.unitId, t.unitKind],
      foreignColumns: [units.id, units.kind],
    }).onDelete('restrict'),
    check('collections_collection_point', sql`${t.unitKind} = 'collection_point'`),
    check('collections_weight', sql`${t.weightKg} > 0 AND ${t.weightKg} <= 5000`),
    check('collections_note', sql`${t.note} IS NULL OR length(${t.note}) <= 500`),
    index('collections_unit_idx').on(t.unitId, t.collectedAt),
  ],
);

export type FeedingRow = typeof feedings.$inferSelect;
export type CollectionRow = typeof collections.$inferSelect;
