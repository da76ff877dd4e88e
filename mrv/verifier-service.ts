import { createHash, randomBytes } from 'node:crypto';
import type { AuditActor, AuditLog } from '../audit/index.ts';
import type { Db } from '../db/client.ts';
import type { DbExecutor } from '../db/scoped.ts';
import { metricNames } from '../devices/metrics.ts';
import { csvHeader, csvRow } from './mrv-encoding.ts';
import { MrvError } from './mrv-errors.ts';
import { parseReportDocument, type ReportDocument } from './mrv-report-fns.ts';
import { createReportLeaves, type StoredReport } from './mrv-leaves.ts';
import type { MrvRepo } from './mrv-repo.ts';
import type {
  HourBucket,
  VerifierRepo,
  VerifierTokenInfo,
  VisibleReport,
} from './verifier-repo.ts';

/** The secret's prefix: a verifier token is recognisable in a leak report, and never an API token. */
export const VERIFIER_TOKEN_PREFIX = 'thv_';
export const MAX_VERIFIER_DAYS = 366;

export const hashVerifierSecret = (secret: string): Buffer =>
  createHash('sha256').update(secret, 'utf8').digest();

/** A month `YYYY-MM` as its first instant (UTC). */
function monthStart(month: string, what: string): Date {
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(month);
  if (!m)
    throw new MrvError.BAD_PERIOD(`${what} ${JSON.stringify(month)} is not a month (YYYY-MM)`);
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1));
}

/**
 * Creating, listing and revoking verifier tokens: the owner's work (the CLI), each change audited
 * in its transaction. The secret is returned once and stored only as its SHA-256.
 */
export function createVerifierAdmin(deps: {
  db: Db;
  repo: VerifierRepo;
  audit: Pick<AuditLog, 'record'>;
  now?: () => Date;
}) {
  const now = deps.now ?? (() => new Date());
  return {
    async create(
      o: {
        name: string;
        units: readonly string[];
        fromMonth: string;
        toMonth: string;
        days: number;
      },
      actor: AuditActor,
    ): Promise<{ secret: string; token: VerifierTokenInfo }> {
      const from = monthStart(o.fromMonth, '--from');
      const last = monthStart(o.toMonth, '--to');
      const to = new Date(Date.UTC(last.getUTCFullYear(), last.getUTCMonth() + 1, 1));
      if (!(to > from)) throw new MrvError.BAD_PERIOD('--to is before --from');
      if (!Number.isInteger(o.days) || o.days < 1 || o.days > MAX_VERIFIER_DAYS)
        throw new MrvError.BAD_PERIOD(
          `the access lasts 1 to ${MAX_VERIFIER_DAYS} days, not ${o.days}`,
        );
      if (o.units.length === 0) throw new MrvError.UNIT_NOT_FOUND('(none given)');
      const name = o.name.trim();
      if (!name || name.length > 200) throw new MrvError.BAD_PERIOD('the name is 1–200 characters');
      const secret = `${VERIFIER_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
      return deps.db.transaction(async (tx) => {
        const found = await deps.repo.digesters(tx, o.units);
        const missing = o.units.find((u) => !found.has(u));
        if (missing !== undefined) throw new MrvError.UNIT_NOT_FOUND(missing);
        const token = await deps.repo.create(tx, {
          name,
          hash: hashVerifierSecret(secret),
          unitIds: [...new Set(found.values())],
          periodFrom: from,
          periodTo: to,
          expiresAt: new Date(now().getTime() + o.days * 86_400_000),
          createdBy: actor.actorId,
        });
        await deps.audit.record(
          {
            ...actor,
            action: 'mrv.verifier_create',
            targetType: 'mrv_verifier',
            targetId: token.id,
            after: {
              name,
              unitIds: token.unitIds,
              periodFrom: token.periodFrom.toISOString(),
              periodTo: token.periodTo.toISOString(),
              expiresAt: token.expiresAt.toISOString(),
            },
          },
          tx,
        );
        return { secret, token };
      });
    },

    async revoke(id: string, actor: AuditActor): Promise<boolean> {
      return deps.db.transaction(async (tx) => {
        const done = await deps.repo.revoke(tx, id);
        if (done)
          await deps.audit.record(
            { ...actor, action: 'mrv.verifier_revoke', targetType: 'mrv_verifier', targetId: id },
            tx,
          );
        return done;
      });
    },

    list: () => deps.repo.tokens(deps.db),
  };
}

export type VerifierAdmin = ReturnType<typeof createVerifierAdmin>;

export interface VerifierReport {
  row: VisibleReport;
  /** The stored row: its units and leaf sources. */
  stored: StoredReport;
  document: ReportDocument;
  /** The signed document exactly as issued (its bytes are what the signature covers). */
  text: string;
}

/**
 * What a verifier may do, built on a transaction opened in its verified scope (api/scoped-services
 * with the `mrv-verifier` credential): row-level security, not this code, limits what it reads.
 * Every download (JSON, readings CSV, printable HTML) is audited under the verifier's id.
 */
export function createVerifierService(deps: {
  db: DbExecutor;
  repo: VerifierRepo;
  mrvRepo: MrvRepo;
  audit: Pick<AuditLog, 'record'>;
}) {
  const { db } = deps;
  const leaves = createReportLeaves(deps.mrvRepo);

  async function reportOrThrow(id: string): Promise<VerifierReport> {
    const row = (await deps.repo.reports(db)).find((r) => r.id === id);
    const stored = row && (await deps.mrvRepo.report(db, id));
    if (!row || !stored) throw new MrvError.REPORT_NOT_FOUND(id);
    return {
      row,
      stored,
      document: parseReportDocument(stored.document),
      text: stored.document,
    };
  }

  /** Audited under the token the database verified (`verifier:<id>`), whatever the request claims. */
  const audited = async (id: string, format: string, actor: AuditActor) => {
    const token = await deps.repo.current(db);
    if (!token) throw new MrvError.REPORT_NOT_FOUND(id);
    await deps.audit.record(
      {
        ...actor,
        actorId: `verifier:${token.id}`,
        actorRole: 'verifier',
        action: 'mrv.report_download',
        targetType: 'mrv_report',
        targetId: id,
        after: { format, via: 'verifier' },
      },
      db,
    );
  };

  return {
    /** The verified token itself, or undefined (revoked or expired since the scope was entered). */
    token: () => deps.repo.current(db),
    reports: () => deps.repo.reports(db),
    report: reportOrThrow,

    async series(id: string): Promise<HourBucket[]> {
      const r = await reportOrThrow(id);
      // A site report's chart is the site's: every digester's readings together.
      const units = r.stored.unitIds ?? (r.stored.unitId ? [r.stored.unitId] : []);
      const sources = r.stored.leafSources ?? (await deps.mrvRepo.versionLine(db, id));
      return deps.repo.hourly(db, units, r.row.periodStart, r.row.periodEnd, sources);
    },

    /** A download of the report (json: the signed document; html: the printable page), audited. */
    async download(
      id: string,
      format: 'json' | 'html',
      actor: AuditActor,
    ): Promise<VerifierReport> {
      const r = await reportOrThrow(id);
      await audited(id, format, actor);
      return r;
    },

    /** The report's signed leaf hashes (32 bytes each), for `verify --leaf-hashes` (audited). */
    async *leafHashes(id: string, actor: AuditActor): AsyncGenerator<Buffer> {
      await reportOrThrow(id);
      await audited(id, 'leaf-hashes', actor);
      yield* deps.mrvRepo.leafHashes(db, id);
    },

    /** The readings behind a report, in leaf order, as `thamani mrv verify --readings` reads them (audited). */
    async *readingsCsv(id: string, actor: AuditActor): AsyncGenerator<string> {
      const r = await reportOrThrow(id);
      await audited(id, 'readings.csv', actor);
      yield `${csvHeader(metricNames)}\n`;
      for await (const reading of leaves.leaves(db, r.stored))
        yield `${csvRow(reading, metricNames)}\n`;
    },
  };
}

export type VerifierService = ReturnType<typeof createVerifierService>;
