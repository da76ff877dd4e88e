import { staleAfterMs } from '../dashboards/pages.ts';
import type { AuditLog } from '../audit/index.ts';
import type { DashboardQueries } from '../dashboards/dashboard-repo.ts';
import type { DbExecutor } from '../db/scoped.ts';
import { createFieldService, type FieldService } from './field-service.ts';

export {
  createFieldService,
  type FieldService,
  type DuePoint,
  type FeedGasDay,
} from './field-service.ts';
export { fillForecast, needsCollectionOrder, type Forecast } from './field-fns.ts';

/** The rule whose warn level says a point needs collection (dashboards/alert-rules.ts). */
const FILL_RULE = 'collection_point.fill_level_pct.high';

/**
 * The field service built on a scoped transaction, with the dashboards' daily gas and the fill
 * alert rule's level (80 % when the rule is missing).
 */
export function fieldServiceMaker(deps: {
  audit: Pick<AuditLog, 'record'>;
  queries: Pick<DashboardQueries, 'dailyGas' | 'rules' | 'overrides'>;
  timeZone: string;
  now?: () => Date;
}): (tx: DbExecutor) => FieldService {
  return (tx) =>
    createFieldService({
      db: tx,
      audit: deps.audit,
      dailyGas: (t, unitId, days, now) => deps.queries.dailyGas(t, unitId, days, now),
      needsAt: async (t) =>
        (await deps.queries.rules(t)).find((r) => r.id === FILL_RULE)?.warn ?? 80,
      unitNeedsAt: async (t) =>
        new Map(
          (await deps.queries.overrides(t))
            .filter((o) => o.ruleId === FILL_RULE && o.enabled)
            .map((o) => [o.unitId, o.warn]),
        ),
      staleAfterMs: async (t) => staleAfterMs(await deps.queries.rules(t), 'collection_point'),
      now: deps.now ?? (() => new Date()),
      timeZone: deps.timeZone,
    });
}
