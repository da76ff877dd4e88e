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
import { createMrvAccumulator } from './mrv-fns.ts';
import { leafHash, MerkleBuilder, pathFromChunks } from './merkle-fns.ts';
import { resolveParams } from './mrv-params.ts';
import {
  parseReportDocument,
  REPORT_FORMAT,
  type InclusionProof,
  type MerkleSummary,
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
          const line = previous ? [id, ...(await repo.versionLine(tx, previous.id))] : [id];
          const issuedAt = new Date();
          await repo.archive(tx, unit.id, opts.start, opts.end, id);
          const params = resolveParams(
            await repo.siteParams(tx, unit.siteId),
            `site ${unit.siteName}`,
          );
          const calibrations = await repo.calibrations(tx, unit.id, opts.start, opts.end);
          const acc = createMrvAccumulator(
            { startMicros: micros(opts.start), endMicros: micros(opts.end) },
            params,
            calibrations,
          );
          // Each chunk's leaf hashes are stored with the report (0032), so that a verifier can
          // name the exact reading that differs; written in batches as the leaves stream by.
          let pending: { index: number; hashes: Buffer }[] = [];
          const tree = new MerkleBuilder(undefined, (index, hashes) =>
            pending.push({ index, hashes: Buffer.concat(hashes) }),
          );
          // Sent without waiting (the transaction's connection runs them in order), awaited below.
          const writes: Promise<void>[] = [];
          const flush = () => {
            const w = repo.insertLeafHashes(tx, id, pending);
            w.catch(() => undefined); // awaited with the others; an early failure is not unhandled
            writes.push(w);
            pending = [];
          };
          for await (const r of repo.leaves(tx, unit.id, opts.start, opts.end, line)) {
            acc.add(r);
            tree.addLeaf(encodeReading(r));
            if (pending.length >= 256) flush();
          }
          const result = acc.finish();
          const { root, size, chunkRoots } = tree.finish();
          flush();
          await Promise.all(writes);
          const merkle: MerkleSummary = {
            algorithm: 'RFC6962-SHA256',
            encoding: 'thamani-reading/1',
            leafOrder: 'device_id bytes, then ts',
            size,
            root: root.toString('hex'),
            chunkSize: tree.chunkSize,
            chunkRoots: chunkRoots.map((h) => h.toString('hex')),
          };
          const prov = await repo.provenance(tx, unit.id, opts.start, opts.end);
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
            label:
              'Measured quantities from metered, device-signed data; the CO2e figure is an estimate, not a certified claim.',
            parameters: params,
            readings: result.readings,
            quantities: result.quantities,
            estimate: result.estimate,
            completeness: result.completeness,
            quarantine: await repo.quarantine(tx, unit.id, opts.start, opts.end),
            excludedReadings: result.excluded,
            provenance: {
              devices: prov.devices.map((d) => ({
                ...d,
                certificates: prov.certificates
                  .filter((c) => c.deviceId === d.id)
                  .map(({ deviceId: _, ...c }) => c),
              })),
              // firmwareVersion above is the registry's current value; this is what ran when.
              firmwareHistory: prov.firmware,
              firmwareNote:
                'firmwareHistory: the version each device ran over the period, from the changes the database records (source "migration": the version held when recording began; before a device\'s first entry its firmware is unknown)',
              alertsOpen: prov.alerts,
              calibrations: calibrations.map((c) => ({
                deviceId: c.deviceId,
                metric: c.metric,
                validFrom: microsToIso(c.validFromMicros),
                validTo: c.validToMicros === null ? null : microsToIso(c.validToMicros),
                result: c.result,
                reference: c.reference,
                recordedBy: c.recordedBy,
              })),
            },
            merkle,
          };
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
            id,
            unitId: unit.id,
            start: opts.start,
            end: opts.end,
            version: report.version,
            supersedes: report.supersedes,
            reason: report.supersedeReason,
            issuedAt,
            issuedBy: opts.actor.actorId,
            root: merkle.root,
            size,
            keyId: deps.signer.keyId,
            document,
          });
          await deps.audit.record(
            {
              ...opts.actor,
              action: 'mrv.report_issue',
              targetType: 'mrv_report',
              targetId: id,
              after: {
                unitId: unit.id,
                period: report.period,
                version: report.version,
                supersedes: report.supersedes,
                reason: report.supersedeReason,
                merkleRoot: merkle.root,
                leaves: size,
              },
            },
            tx,
          );
          return { id, version: report.version, document };
        },
        // READ COMMITTED, not REPEATABLE READ: the leaves are the archive rows archived by this
        // report's version line (this transaction's own copy, and earlier versions' rows, committed
        // and append-only), so no snapshot is needed to read them the same twice; and a snapshot
        // taken before the audit chain lock would read a stale chain head, so two reports issued
        // at once (mrv issue --all) collided on the audit sequence (mrv-batch.test.ts).
        { isolationLevel: 'read committed' },
      );
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
      const line = await repo.versionLine(db, r.id);
      yield `${csvHeader(metricNames)}\n`;
      for await (const reading of repo.leaves(db, r.unitId, r.periodStart, r.periodEnd, line))
        yield `${csvRow(reading, metricNames)}\n`;
    },

    /** An RFC 6962 inclusion proof for one reading of a report, from its chunk's leaves and the signed chunk roots. */
    async prove(id: string, deviceId: string, ts: string): Promise<InclusionProof> {
      const r = await reportOrThrow(db, id);
      const doc = parseReportDocument(r.document);
      const line = await repo.versionLine(db, r.id);
      const tsMicros = parseInstant(ts);
      const index = await repo.leafIndex(
        db,
        r.unitId,
        r.periodStart,
        r.periodEnd,
        line,
        deviceId,
        tsMicros,
      );
      const { chunkSize, chunkRoots } = doc.report.merkle;
      const chunkStart = index - (index % chunkSize);
      const chunk: RawReading[] = [];
      if (chunkStart < doc.report.merkle.size) {
        let first: { deviceId: string; tsMicros: bigint } | undefined;
        if (chunkStart > 0) {
          // The leaf just before the chunk: keyset start (its position is chunkStart - 1).
          first = await repo.leafAt(db, r.unitId, r.periodStart, r.periodEnd, line, chunkStart - 1);
        }
        for await (const leaf of repo.leaves(
          db,
          r.unitId,
          r.periodStart,
          r.periodEnd,
          line,
          first,
        )) {
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
