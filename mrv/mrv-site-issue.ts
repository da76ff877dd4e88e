import { randomUUID } from 'node:crypto';
import type { AuditActor } from '../audit/index.ts';
import type { DbExecutor } from '../db/scoped.ts';
import { microsToIso } from './mrv-encoding.ts';
import { MrvError } from './mrv-errors.ts';
import { resolveParams } from './mrv-params.ts';
import {
  createTreeWriter,
  digesterPass,
  LABEL,
  merkleSummary,
  type IssuedBody,
} from './mrv-pass.ts';
import type { MrvRepo } from './mrv-repo.ts';
import { SITE_LEAF_ORDER } from './mrv-report-fns.ts';
import { siteTotals } from './site-fns.ts';

type SignAndStore = (
  tx: DbExecutor,
  report: IssuedBody,
  row: {
    unitId: null;
    siteId: string;
    unitIds: readonly string[];
    leafSources: readonly string[];
    start: Date;
    end: Date;
    issuedAt: Date;
    actor: AuditActor;
    auditAfter: Record<string, unknown>;
  },
) => Promise<string>;

const micros = (d: Date) => BigInt(d.getTime()) * 1000n;

/**
 * Issues the report of every digester of a site for one period, in the caller's REPEATABLE READ
 * transaction (docs/mrv.md, "Site reports"): archives each digester's readings, runs the same
 * pass as a digester report over each in unit id order through ONE tree, and adds the totals.
 * The digesters are frozen in the report (and in unit_ids, which verifier access checks).
 */
export async function issueSiteReport(
  tx: DbExecutor,
  deps: { repo: MrvRepo; signAndStore: SignAndStore },
  opts: { site: string; start: Date; end: Date; actor: AuditActor; reason?: string },
): Promise<{ id: string; version: number; document: string }> {
  const { repo } = deps;
  const site = await repo.siteDigesters(tx, opts.site);
  if (!site) throw new MrvError.SITE_NOT_FOUND(opts.site);
  if (site.digesters.length === 0) throw new MrvError.SITE_WITHOUT_DIGESTERS(site.name);
  await repo.lockPeriod(tx, `site:${site.id}`, opts.start);
  const previous = await repo.latestVersion(tx, site.id, opts.start, true);
  if (previous && !opts.reason)
    throw new MrvError.ALREADY_ISSUED(`site ${site.name}`, previous.version);
  if (!previous && opts.reason) throw new MrvError.NOTHING_TO_CORRECT(`site ${site.name}`);
  const id = randomUUID();
  const issuedAt = new Date();
  const unitIds = site.digesters.map((d) => d.id);
  for (const d of site.digesters) await repo.archive(tx, d.id, opts.start, opts.end, id);
  const sources = await repo.leafSourcesFor(tx, unitIds, opts.start, opts.end, id);
  const params = resolveParams(await repo.siteParams(tx, site.id), `site ${site.name}`);
  const writer = createTreeWriter(tx, repo, id);
  const digesters = [];
  for (const unit of site.digesters) {
    const section = await digesterPass(tx, repo, unit, opts, sources, params, writer);
    digesters.push({ unit: { id: unit.id, name: unit.name, kind: unit.kind }, ...section });
  }
  const merkle = merkleSummary(await writer.finish(), writer.tree.chunkSize, SITE_LEAF_ORDER);
  const report = {
    id,
    version: previous ? previous.version + 1 : 1,
    supersedes: previous?.id ?? null,
    supersedeReason: opts.reason ?? null,
    issuedAt: issuedAt.toISOString(),
    issuedBy: opts.actor.actorId,
    subject: {
      site: { id: site.id, name: site.name },
      digesters: digesters.map((d) => d.unit),
    },
    period: {
      start: microsToIso(micros(opts.start)),
      end: microsToIso(micros(opts.end)),
      timezone: 'UTC',
    },
    label: LABEL,
    parameters: params,
    ...siteTotals(digesters),
    totalsNote:
      "readings, quantities, estimate and quarantine are the site totals: the sums of digesters[] in order (methaneFraction: methaneNm3 / biogasNm3). digesters[].leaves: where each digester's readings lie among the leaves.",
    digesters,
    merkle,
  };
  const document = await deps.signAndStore(tx, report, {
    unitId: null,
    siteId: site.id,
    unitIds,
    leafSources: sources,
    start: opts.start,
    end: opts.end,
    issuedAt,
    actor: opts.actor,
    auditAfter: { siteId: site.id, unitIds },
  });
  return { id, version: report.version, document };
}
