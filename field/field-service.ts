import type { AuditActor, AuditLog } from '../audit/index.ts';
import { inTurn, type DbExecutor } from '../db/scoped.ts';
import { FieldErrors } from './field-errors.ts';
import {
  CORRECTION_WINDOW_DAYS,
  FORECAST_WINDOW_MS,
  fillForecast,
  needsCollectionOrder,
  timeProblem,
  type DueItem,
} from './field-fns.ts';
import { fieldRepo, type FeedingView, type FieldUnit } from './field-repo.ts';

const DAY_MS = 86_400_000;

export interface FeedGasDay {
  /** Local calendar day (YYYY-MM-DD) of the configured zone. */
  day: string;
  kg: number;
  m3: number;
}

export interface DuePoint extends DueItem {
  unit: FieldUnit;
}

/**
 * What a kitchen manager and a collector record in the field (issue 19). Runs on the caller's
 * scoped transaction (api/scoped-services.ts): row-level security decides which units exist and
 * whose feedings may be corrected; each change and its signed audit entry commit together, and
 * the database refuses the commit of a change without one (migration field_security).
 */
export function createFieldService(deps: {
  db: DbExecutor;
  audit: Pick<AuditLog, 'record'>;
  /** Daily gas of a digester (dashboards' dailyGas: m³ per local day, the last `days` up to `now`). */
  dailyGas: (
    tx: DbExecutor,
    unitId: string,
    days: number,
    now?: Date,
  ) => Promise<{ day: string; m3: number }[]>;
  /** The fill level (%) at which a point needs collection: the fill alert rule's warn level. */
  needsAt: (tx: DbExecutor) => Promise<number>;
  /** Points with their own fill level (a unit's override of the fill rule): unit id → level. */
  unitNeedsAt?: (tx: DbExecutor) => Promise<ReadonlyMap<string, number>>;
  /** How old a fill reading may be before it is stale (the offline rule's interval). */
  staleAfterMs?: (tx: DbExecutor) => Promise<number>;
  now: () => Date;
  timeZone: string;
}) {
  const { db } = deps;

  async function unitOf(id: string, kind: FieldUnit['kind']): Promise<FieldUnit> {
    const unit = await fieldRepo.unit(db, id, kind);
    if (!unit) throw new FieldErrors.UnitNotFound(id);
    return unit;
  }

  function checkTime(at: Date, unit: FieldUnit, what: string): void {
    const problem = timeProblem(at, { now: deps.now(), unitCreatedAt: unit.createdAt });
    if (problem === 'future')
      throw new FieldErrors.TimeInvalid(`${what} ${at.toISOString()} is in the future`);
    if (problem === 'before-unit')
      throw new FieldErrors.TimeInvalid(
        `${what} ${at.toISOString()} is before ${unit.name} was registered (${unit.createdAt.toISOString()})`,
      );
  }

  /** The entry as the caller may change it, or the reason they may not. */
  async function editable(id: number, actor: AuditActor): Promise<FeedingView> {
    const before = await fieldRepo.feeding(db, id);
    if (!before) throw new FieldErrors.FeedingNotFound(String(id));
    if (before.recordedBy !== actor.actorId)
      throw new FieldErrors.FeedingLocked(
        String(id),
        'only the person who recorded it may change it',
      );
    if (before.voidedAt) throw new FieldErrors.FeedingLocked(String(id), 'it was deleted');
    if (deps.now().getTime() - before.recordedAt.getTime() > CORRECTION_WINDOW_DAYS * DAY_MS)
      throw new FieldErrors.FeedingLocked(
        String(id),
        `it was recorded more than ${CORRECTION_WINDOW_DAYS} days ago`,
      );
    if (!(await fieldRepo.lockFeeding(db, id)))
      throw new FieldErrors.FeedingLocked(String(id), 'it changed meanwhile');
    return before;
  }

  const plain = (f: Pick<FeedingView, 'kg' | 'fedAt' | 'note'>) => ({
    kg: f.kg,
    fedAt: f.fedAt.toISOString(),
    note: f.note,
  });

  return {
    unit: unitOf,

    async recordFeeding(
      input: {
        unitId: string;
        kg: number;
        fedAt?: Date | undefined;
        note?: string | null | undefined;
      },
      actor: AuditActor,
    ): Promise<FeedingView> {
      const unit = await unitOf(input.unitId, 'biodigester');
      const fedAt = input.fedAt ?? deps.now();
      checkTime(fedAt, unit, 'Feeding time');
      const note = input.note?.trim() || null;
      const id = await fieldRepo.insertFeeding(db, {
        unitId: unit.id,
        fedAt,
        kg: input.kg,
        note,
        recordedBy: actor.actorId,
      });
      await deps.audit.record(
        {
          ...actor,
          action: 'feeding.record',
          targetType: 'feeding',
          targetId: String(id),
          after: { unitId: unit.id, kg: input.kg, fedAt: fedAt.toISOString(), note },
        },
        db,
      );
      return (await fieldRepo.feeding(db, id))!;
    },

    /** A correction keeps the old values in the audit entry (before), never silently. */
    async correctFeeding(
      id: number,
      patch: {
        kg?: number | undefined;
        fedAt?: Date | undefined;
        note?: string | null | undefined;
      },
      actor: AuditActor,
    ): Promise<FeedingView> {
      const before = await editable(id, actor);
      const unit = await unitOf(before.unitId, 'biodigester');
      if (patch.fedAt) checkTime(patch.fedAt, unit, 'Feeding time');
      const next = {
        kg: patch.kg ?? before.kg,
        fedAt: patch.fedAt ?? before.fedAt,
        note: patch.note === undefined ? before.note : patch.note?.trim() || null,
      };
      if (!(await fieldRepo.updateFeeding(db, id, { ...next, correctedAt: deps.now() })))
        throw new FieldErrors.FeedingLocked(String(id), 'it changed meanwhile');
      await deps.audit.record(
        {
          ...actor,
          action: 'feeding.correct',
          targetType: 'feeding',
          targetId: String(id),
          before: plain(before),
          after: plain(next),
        },
        db,
      );
      return (await fieldRepo.feeding(db, id))!;
    },

    /** Deleting is voiding: the row stays (marked), the audit entry keeps what it said. */
    async deleteFeeding(id: number, actor: AuditActor): Promise<FeedingView> {
      const before = await editable(id, actor);
      if (!(await fieldRepo.updateFeeding(db, id, { voidedAt: deps.now() })))
        throw new FieldErrors.FeedingLocked(String(id), 'it changed meanwhile');
      await deps.audit.record(
        {
          ...actor,
          action: 'feeding.delete',
          targetType: 'feeding',
          targetId: String(id),
          before: plain(before),
          after: { voided: true },
        },
        db,
      );
      return (await fieldRepo.feeding(db, id))!;
    },

    async feedings(unitId: string, days: number): Promise<FeedingView[]> {
      const unit = await unitOf(unitId, 'biodigester');
      return fieldRepo.feedings(db, unit.id, {
        since: new Date(deps.now().getTime() - days * DAY_MS),
        limit: 500,
      });
    },

    /** Kilograms fed and m³ of gas per local day, the last `days` days (today included). */
    async feedGas(unitId: string, days: number): Promise<FeedGasDay[]> {
      const unit = await unitOf(unitId, 'biodigester');
      const now = deps.now();
      const gas = await deps.dailyGas(db, unit.id, days, now);
      if (gas.length === 0) return [];
      // The days dailyGas counted, as instants: from the first day's start to now.
      const from = new Date(now.getTime() - (days + 1) * DAY_MS);
      const fed = new Map(
        (
          await fieldRepo.feedPerDay(
            db,
            unit.id,
            from,
            new Date(now.getTime() + DAY_MS),
            deps.timeZone,
          )
        ).map((d) => [d.day, d.kg]),
      );
      return gas.map((g) => ({
        day: g.day,
        m3: g.m3,
        kg: Math.round((fed.get(g.day) ?? 0) * 10) / 10,
      }));
    },

    async recordCollection(
      input: {
        unitId: string;
        weightKg: number;
        collectedAt?: Date | undefined;
        note?: string | null | undefined;
      },
      actor: AuditActor,
    ) {
      const unit = await unitOf(input.unitId, 'collection_point');
      const collectedAt = input.collectedAt ?? deps.now();
      checkTime(collectedAt, unit, 'Collection time');
      const note = input.note?.trim() || null;
      const id = await fieldRepo.insertCollection(db, {
        unitId: unit.id,
        collectedAt,
        weightKg: input.weightKg,
        note,
        collectedBy: actor.actorId,
      });
      await deps.audit.record(
        {
          ...actor,
          action: 'collection.record',
          targetType: 'collection',
          targetId: String(id),
          after: {
            unitId: unit.id,
            weightKg: input.weightKg,
            collectedAt: collectedAt.toISOString(),
            note,
          },
        },
        db,
      );
      return {
        id,
        unitId: unit.id,
        collectedAt,
        weightKg: input.weightKg,
        note,
        collectedBy: actor.actorId,
      };
    },

    async collections(unitId: string, range: { from?: Date; to?: Date; limit?: number }) {
      const unit = await unitOf(unitId, 'collection_point');
      return {
        unit,
        collections: await fieldRepo.collections(db, unit.id, {
          ...range,
          limit: range.limit ?? 10_000,
        }),
      };
    },

    /** Every point the caller may see, in the needs-collection order (field-fns.ts), with its forecast. */
    async needsCollection(): Promise<{ needsAt: number; points: DuePoint[] }> {
      const now = deps.now();
      const needsAt = await deps.needsAt(db);
      const own = (await deps.unitNeedsAt?.(db)) ?? new Map<string, number>();
      const staleAfterMs = deps.staleAfterMs ? await deps.staleAfterMs(db) : undefined;
      const units = await fieldRepo.units(db, 'collection_point');
      const ids = units.map((u) => u.id);
      if (ids.length === 0) return { needsAt, points: [] };
      const [last, fill, readings] = await inTurn(
        () => fieldRepo.lastCollected(db, ids),
        () => fieldRepo.latestFill(db, ids),
        () => fieldRepo.fillReadings(db, ids, new Date(now.getTime() - FORECAST_WINDOW_MS)),
      );
      const byId = new Map(units.map((u) => [u.id, u]));
      const points = needsCollectionOrder(
        units.map((u) => ({
          unitId: u.id,
          fill: fill.get(u.id) ?? null,
          lastCollectedAt: last.get(u.id) ?? null,
          forecast: fillForecast(readings.get(u.id) ?? [], {
            now,
            lastCollectedAt: last.get(u.id) ?? null,
          }),
        })),
        (unitId) => own.get(unitId) ?? needsAt,
        { now: now.getTime(), ...(staleAfterMs === undefined ? {} : { staleAfterMs }) },
      ).map((d) => ({ ...d, unit: byId.get(d.unitId)! }));
      return { needsAt, points };
    },
  };
}

export type FieldService = ReturnType<typeof createFieldService>;
