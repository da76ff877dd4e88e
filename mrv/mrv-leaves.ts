import type { DbExecutor } from '../db/scoped.ts';
import type { RawReading } from './mrv-encoding.ts';
import type { MrvRepo } from './mrv-repo.ts';

/**
 * A stored report's leaves, digester or site (docs/mrv.md, "Leaf order"). A digester report's
 * leaves are its unit's archived rows of the period in (device id bytes, ts) order; a site
 * report's are each of its digesters' leaves in turn, digesters in unit id byte order, so one
 * digester's leaves are a run of the same bytes as in its own report. Which archived rows: those
 * archived by one of the report's leaf sources (0035), or by its version line for reports issued
 * before sources were recorded.
 */

export interface StoredReport {
  id: string;
  unitId: string | null;
  unitIds: string[] | null;
  leafSources: string[] | null;
  periodStart: Date;
  periodEnd: Date;
}

export function createReportLeaves(repo: MrvRepo) {
  const sourcesOf = async (tx: DbExecutor, r: StoredReport) =>
    r.leafSources ?? (await repo.versionLine(tx, r.id));
  const unitsOf = (r: StoredReport): string[] => r.unitIds ?? (r.unitId ? [r.unitId] : []);

  return {
    /** The leaves in order, from leaf `fromIndex` on (a proof reads one chunk). */
    async *leaves(tx: DbExecutor, r: StoredReport, fromIndex = 0): AsyncGenerator<RawReading> {
      const sources = await sourcesOf(tx, r);
      let skip = fromIndex;
      for (const unit of unitsOf(r)) {
        let from: { deviceId: string; tsMicros: bigint } | undefined;
        if (skip > 0) {
          const n = await repo.leafCount(tx, unit, r.periodStart, r.periodEnd, sources);
          if (skip >= n) {
            skip -= n;
            continue;
          }
          // The leaf just before: keyset start within this unit.
          from = await repo.leafAt(tx, unit, r.periodStart, r.periodEnd, sources, skip - 1);
          skip = 0;
        }
        yield* repo.leaves(tx, unit, r.periodStart, r.periodEnd, sources, from);
      }
    },

    /** Position of one reading among the report's leaves, or undefined when it is none of them. */
    async index(
      tx: DbExecutor,
      r: StoredReport,
      deviceId: string,
      tsMicros: bigint,
    ): Promise<number | undefined> {
      const sources = await sourcesOf(tx, r);
      const units = unitsOf(r);
      const unit = units.length === 1 ? units[0] : await repo.unitOfReading(tx, deviceId, tsMicros);
      if (!unit || !units.includes(unit)) return undefined;
      let before = 0;
      for (const u of units) {
        if (u === unit) break;
        before += await repo.leafCount(tx, u, r.periodStart, r.periodEnd, sources);
      }
      return (
        before +
        (await repo.leafIndex(tx, unit, r.periodStart, r.periodEnd, sources, deviceId, tsMicros))
      );
    },
  };
}

export type ReportLeaves = ReturnType<typeof createReportLeaves>;
