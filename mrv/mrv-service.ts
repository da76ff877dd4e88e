import { randomUUID } from 'node:crypto';
import type { AuditActor, AuditLog } from '../audit/index.ts';
import type { Db } from '../db/client.ts';
import type { DbExecutor } from '../db/scoped.ts';
import {
  csvHeader,
  csvRow,
  encodeReading,
  isoToMicros,
  microsToIso,
  type RawReading,
} from './mrv-encoding.ts';
import { MrvError } from './mrv-errors.ts';
import { leafHash, pathFromChunks } from './merkle-fns.ts';
import { createReportLeaves } from './mrv-leaves.ts';
import {
  createTreeWriter,
  digesterPass,
  LABEL,
  merkleSummary,
  type IssuedBody,
} from './mrv-pass.ts';
import { issueSiteReport } from './mrv-site-issue.ts';
import { resolveParams } from './mrv-params.ts';
import {
  DIGESTER_LEAF_ORDER,
  parseReportDocument,
  REPORT_FORMAT,
  type InclusionProof,
  type ReportDocument,
} from './mrv-report-fns.ts';
import type { MrvRepo } from './mrv-repo.ts';
import type { MrvSigner } from './mrv-signer.ts';
import { metricNames } from '../devices/metrics.ts';

/** A calendar month in UTC, `YYYY-MM`. */
export function monthPeriod(month: string): { start: Date; end: Date } {
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(month);
  if (!m) throw new MrvError.BAD_PERIOD(`${JSON.stringify(month)} is not a month (YYYY-MM)`);
  const [y, mo] = [Number(m[1]), Number(m[2])];
  return { start: new Date(Date.UTC(y, mo - 1, 1)), end: new Date(Date.UTC(y, mo, 1)) };
}

const micros = (d: Date) => BigInt(d.getTime()) * 1000n;

/** ISO 8601 in UTC with up to microseconds, or any date Date.parse reads (millisecond precision). */
function parseInstant(ts: string): bigint {
  try {
    return isoToMicros(ts);
  } catch {
    const ms = Date.parse(ts);
    if (Number.isNaN(ms)) throw new MrvError.BAD_PERIOD(`${JSON.stringify(ts)} is not a timestamp`);
    return BigInt(ms) * 1000n;
  }
}

export function createMrvService(deps: {
  db: Db;
  repo: MrvRepo;
  audit: Pick<AuditLog, 'record'>;
  signer: MrvSigner;
}) {
  const { db, repo } = deps;
  const leaves = createReportLeaves(repo);

  async function unitOrThrow(tx: DbExecutor, unit: string) {
    const u = await repo.unit(tx, unit);
    if (!u) throw new MrvError.UNIT_NOT_FOUND(unit);
    if (u.kind !== 'biodigester') throw new MrvError.NOT_A_DIGESTER(u.name, u.kind);
    return u;
  }

  async function reportOrThrow(tx: DbExecutor, id: string) {
    const r = await repo.report(tx, id);
    if (!r) throw new MrvError.REPORT_NOT_FOUND(id);
    return r;
  }

  /** Signs the report, stores it with its audit entry; answers the document exactly as issued. */
  async function signAndStore(
    tx: DbExecutor,
    report: IssuedBody,
    row: {
      unitId: string | null;
      siteId?: string;
      unitIds?: readonly string[];
      leafSources: readonly string[];
      start: Date;
      end: Date;
      issuedAt: Date;
      actor: AuditActor;
      auditAfter: Record<string, unknown>;
    },
  ): Promise<string> {
    // Through JSON once so the signed object is exactly what a verifier will parse (Dates as strings, no undefined).
    const body = JSON.parse(JSON.stringify(report)) as ReportDocument['report'];
    const doc: ReportDocument = {
      format: REPORT_FORMAT,
      report: body,
      signature: {
        algorithm: 'Ed25519',
        keyId: deps.signer.keyId,
        publicKey: deps.signer.publicKeyPem,
        value: deps.signer.signReport(body),
      },
    };
    const document = `${JSON.stringify(doc, null, 2)}\n`;
    await repo.insertReport(tx, {
      id: report.id,
      unitId: row.unitId,
      ...(row.siteId ? { siteId: row.siteId, unitIds: row.unitIds ?? [] } : {}),
      leafSources: row.leafSources,
      start: row.start,
      end: row.end,
      version: report.version,
      supersedes: report.supersedes,
      reason: report.supersedeReason,
      issuedAt: row.issuedAt,
      issuedBy: row.actor.actorId,
      root: report.merkle.root,
      size: report.merkle.size,
      keyId: deps.signer.keyId,
      document,
    });
    await deps.audit.record(
      {
        ...row.actor,
        action: 'mrv.report_issue',
        targetType: 'mrv_report',
        targetId: report.id,
        after: {
          ...row.auditAfter,
          period: report.period,
          version: report.version,
          supersedes: report.supersedes,
          reason: report.supersedeReason,
          merkleRoot: report.merkle.root,
          leaves: report.merkle.size,
        },
      },
      tx,
    );
    return document;
  }

  return {
    /**
     * Issues the report of one digester for one period: archives its raw readings (kept ≥ 7
     * years), streams them once in leaf order into the quantities and the Merkle tree, signs, and
     * stores it with its audit entry, all in one transaction. With `reason`, a
     * new version superseding the latest one; without, only the first version.
     */
    async issue(opts: {
      unit: string;
      start: Date;
      end: Date;
      actor: AuditActor;
      reason?: string;
    }): Promise<{ id: string; version: number; document: string }> {
      if (!(opts.end > opts.start))
        throw new MrvError.BAD_PERIOD('the period ends before it starts');
      return db.transaction(
        async (tx) => {
          const unit = await unitOrThrow(tx, opts.unit);
          await repo.lockPeriod(tx, unit.id, opts.start);
          const previous = await repo.latestVersion(tx, unit.id, opts.start);
          if (previous && !opts.reason)
            throw new MrvError.ALREADY_ISSUED(unit.name, previous.version);
          if (!previous && opts.reason) throw new MrvError.NOTHING_TO_CORRECT(unit.name);
          const id = randomUUID();
          const issuedAt = new Date();
          await repo.archive(tx, unit.id, opts.start, opts.end, id);
          // Its leaves: rows archived by it or by any report issued before over this unit and an
          // overlapping period (its own earlier versions, a site report): docs/mrv.md.
          const sources = await repo.leafSourcesFor(tx, [unit.id], opts.start, opts.end, id);
          const params = resolveParams(
            await repo.siteParams(tx, unit.siteId),
            `site ${unit.siteName}`,
          );
          const writer = createTreeWriter(tx, repo, id);
          const { leaves: _, ...section } = await digesterPass(
            tx,
            repo,
            unit,
            opts,
            sources,
            params,
            writer,
          );
          const merkle = merkleSummary(
            await writer.finish(),
            writer.tree.chunkSize,
            DIGESTER_LEAF_ORDER,
          );
          const report = {
            id,
            version: previous ? previous.version + 1 : 1,
            supersedes: previous?.id ?? null,
            supersedeReason: opts.reason ?? null,
            issuedAt: issuedAt.toISOString(),
            issuedBy: opts.actor.actorId,
            subject: {
              unit: { id: unit.id, name: unit.name, kind: unit.kind },
              site: { id: unit.siteId, name: unit.siteName },
            },
            period: {
              start: microsToIso(micros(opts.start)),
              end: microsToIso(micros(opts.end)),
              timezone: 'UTC',
            },
            label: LABEL,
            parameters: params,
            ...section,
            merkle,
          };
          const document = await signAndStore(tx, report, {
            unitId: unit.id,
            leafSources: sources,
            start: opts.start,
            end: opts.end,
            issuedAt,
            actor: opts.actor,
            auditAfter: { unitId: unit.id },
          });
          return { id, version: report.version, document };
        },
        // READ COMMITTED, not REPEATABLE READ: the leaves are archive rows (committed, append-only)
        // archived by one of this report's leaf sources, read after its own archive insert; a
        // report that archived some of the same rows first has committed by then (the insert
        // waited on the key), so no snapshot is needed; and a snapshot taken before the audit chain
        // lock read a stale chain head: two reports issued at once (mrv issue --all) collided on
        // the audit sequence (mrv-batch.test.ts). docs/mrv.md, "Immutability and retention".
        { isolationLevel: 'read committed' },
      );
    },

    /**
     * Issues the report of every digester of a site for one period (site id or name): one
     * Merkle root over all their readings, per-digester figures and site totals. Versioned and
     * corrected like a digester report.
     */
    issueSite(opts: {
      site: string;
      start: Date;
      end: Date;
      actor: AuditActor;
      reason?: string;
    }): Promise<{ id: string; version: number; document: string }> {
      if (!(opts.end > opts.start))
        return Promise.reject(new MrvError.BAD_PERIOD('the period ends before it starts'));
      // READ COMMITTED for the reasons given in issue() above.
      return db.transaction((tx) => issueSiteReport(tx, { repo, signAndStore }, opts), {
        isolationLevel: 'read committed',
      });
    },

    /** The signed document as issued; every download is audited. */
    async download(id: string, actor: AuditActor, format = 'json'): Promise<string> {
      return db.transaction(async (tx) => {
        const r = await reportOrThrow(tx, id);
        await deps.audit.record(
          {
            ...actor,
            action: 'mrv.report_download',
            targetType: 'mrv_report',
            targetId: r.id,
            after: { format },
          },
          tx,
        );
        return r.document;
      });
    },

    list: (unitId?: string) => repo.list(db, unitId),

    /** The report's stored leaf hashes (32 bytes each, leaf order), for `verify --leaf-hashes` (audited as a download). */
    async *exportLeafHashes(id: string, actor: AuditActor): AsyncGenerator<Buffer> {
      const r = await reportOrThrow(db, id);
      await deps.audit.record({
        ...actor,
        action: 'mrv.report_download',
        targetType: 'mrv_report',
        targetId: r.id,
        after: { format: 'leaf-hashes' },
      });
      yield* repo.leafHashes(db, r.id);
    },

    /** The raw readings of a report, as the CSV `verify --readings` recomputes the root from (audited as a download). */
    async *exportReadings(id: string, actor: AuditActor): AsyncGenerator<string> {
      const r = await reportOrThrow(db, id);
      await deps.audit.record({
        ...actor,
        action: 'mrv.report_download',
        targetType: 'mrv_report',
        targetId: r.id,
        after: { format: 'readings.csv' },
      });
      yield `${csvHeader(metricNames)}\n`;
      for await (const reading of leaves.leaves(db, r)) yield `${csvRow(reading, metricNames)}\n`;
    },

    /** An RFC 6962 inclusion proof for one reading of a report, from its chunk's leaves and the signed chunk roots. */
    async prove(id: string, deviceId: string, ts: string): Promise<InclusionProof> {
      const r = await reportOrThrow(db, id);
      const doc = parseReportDocument(r.document);
      const tsMicros = parseInstant(ts);
      const index = await leaves.index(db, r, deviceId, tsMicros);
      if (index === undefined)
        throw new MrvError.READING_NOT_IN_REPORT(deviceId, microsToIso(tsMicros), r.id);
      const { chunkSize, chunkRoots } = doc.report.merkle;
      const chunkStart = index - (index % chunkSize);
      const chunk: RawReading[] = [];
      if (chunkStart < doc.report.merkle.size) {
        for await (const leaf of leaves.leaves(db, r, chunkStart)) {
          chunk.push(leaf);
          if (chunk.length === chunkSize) break;
        }
      }
      const target = chunk[index - chunkStart];
      if (!target || target.deviceId !== deviceId || target.tsMicros !== tsMicros)
        throw new MrvError.READING_NOT_IN_REPORT(deviceId, microsToIso(tsMicros), r.id);
      const hashes = chunk.map((c) => leafHash(encodeReading(c)));
      const path = pathFromChunks(
        index,
        chunkSize,
        hashes,
        chunkRoots.map((h) => Buffer.from(h, 'hex')),
      );
      return {
        format: 'thamani-mrv-proof/1',
        reportId: r.id,
        root: doc.report.merkle.root,
        treeSize: doc.report.merkle.size,
        leafIndex: index,
        reading: {
          deviceId: target.deviceId,
          unitId: target.unitId,
          ts: microsToIso(target.tsMicros),
          seq: target.seq.toString(),
          values: target.values,
        },
        leaf: encodeReading(target).toString('hex'),
        path: path.map((p) => p.toString('hex')),
      };
    },

    async addCalibration(
      c: {
        deviceId: string;
        metric: string;
        validFrom: Date;
        validTo: Date | null;
        result: 'pass' | 'fail';
        reference: string;
      },
      actor: AuditActor,
    ): Promise<number> {
      return db.transaction(async (tx) => {
        const id = await repo.addCalibration(tx, { ...c, recordedBy: actor.actorId });
        await deps.audit.record(
          {
            ...actor,
            action: 'mrv.calibration_record',
            targetType: 'device',
            targetId: c.deviceId,
            after: { id, ...c },
          },
          tx,
        );
        return id;
      });
    },

    async setSiteParams(site: string, overrides: unknown, actor: AuditActor): Promise<void> {
      resolveParams(overrides); // refuses unknown keys and out-of-range values before storing
      await db.transaction(async (tx) => {
        await repo.setSiteParams(tx, site, overrides, actor.actorId);
        await deps.audit.record(
          {
            ...actor,
            action: 'mrv.site_parameters_set',
            targetType: 'site',
            targetId: site,
            after: overrides,
          },
          tx,
        );
      });
    },
  };
}

export type MrvService = ReturnType<typeof createMrvService>;
