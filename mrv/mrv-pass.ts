import type { DbExecutor } from '../db/scoped.ts';
import { asQueryable } from '../db/scoped.ts';
import { calibrationHistory } from '../device-config/index.ts';
import { createCalibrationCounter, type DeviceCalibrationSpan } from './calibration-fns.ts';
import { encodeReading, microsToIso } from './mrv-encoding.ts';
import { createMrvAccumulator } from './mrv-fns.ts';
import { MerkleBuilder } from './merkle-fns.ts';
import type { MrvParams } from './mrv-params.ts';
import type { MrvRepo, UnitInfo } from './mrv-repo.ts';
import type { MerkleSummary } from './mrv-report-fns.ts';

/**
 * The issuing pass over one digester's leaves, shared by digester and site reports: the readings
 * stream once in leaf order into the quantities, the calibration counts and the Merkle tree (a
 * site report passes one tree through every digester, so a digester's leaves are the same bytes
 * in both). Each chunk's leaf hashes are stored with the report (0032) as the leaves go by.
 */

export interface Period {
  start: Date;
  end: Date;
}

const micros = (d: Date) => BigInt(d.getTime()) * 1000n;

export const LABEL =
  'Measured quantities from metered, device-signed data; the CO2e figure is an estimate, not a certified claim.';

/** The signed summary of a finished tree. */
export function merkleSummary(
  t: { root: Buffer; size: number; chunkRoots: Buffer[] },
  chunkSize: number,
  leafOrder: MerkleSummary['leafOrder'],
): MerkleSummary {
  return {
    algorithm: 'RFC6962-SHA256',
    encoding: 'thamani-reading/1',
    leafOrder,
    size: t.size,
    root: t.root.toString('hex'),
    chunkSize,
    chunkRoots: t.chunkRoots.map((h) => h.toString('hex')),
  };
}

/** What signAndStore needs of any report body. */
export interface IssuedBody {
  id: string;
  version: number;
  supersedes: string | null;
  supersedeReason: string | null;
  period: unknown;
  merkle: MerkleSummary;
}

/** The report's tree and the writes of its chunks' leaf hashes, in the issuing transaction. */
export function createTreeWriter(tx: DbExecutor, repo: MrvRepo, reportId: string) {
  let pending: { index: number; hashes: Buffer }[] = [];
  const tree = new MerkleBuilder(undefined, (index, hashes) =>
    pending.push({ index, hashes: Buffer.concat(hashes) }),
  );
  // Stored between the slices of the leaf scan, when the transaction's connection is free (one
  // connection runs one statement at a time), and the rest at the end.
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const chunks = pending;
    pending = [];
    await repo.insertLeafHashes(tx, reportId, chunks);
  };
  return {
    tree,
    flush,
    async finish() {
      const out = tree.finish();
      await flush();
      return out;
    },
  };
}

export type TreeWriter = ReturnType<typeof createTreeWriter>;

/** Every figure of one digester over the period, from its leaves (`sources`: docs/mrv.md). */
export async function digesterPass(
  tx: DbExecutor,
  repo: MrvRepo,
  unit: UnitInfo,
  period: Period,
  sources: readonly string[],
  params: MrvParams,
  writer: TreeWriter,
) {
  const range = { startMicros: micros(period.start), endMicros: micros(period.end) };
  const calibrations = await repo.calibrations(tx, unit.id, period.start, period.end);
  const prov = await repo.provenance(tx, unit.id, period.start, period.end);
  // Which device configuration (its calibration: issue 21) produced which readings.
  const spans = new Map<string, DeviceCalibrationSpan[]>();
  for (const d of prov.devices)
    spans.set(d.id, await calibrationHistory(asQueryable(tx), d.id, period.start, period.end));
  const versions = createCalibrationCounter(range, spans);
  const acc = createMrvAccumulator(range, params, calibrations);
  const firstLeaf = writer.tree.size;
  const leaves = repo.scanLeaves(tx, unit.id, period.start, period.end, sources, writer.flush);
  for await (const batch of leaves)
    for (const r of batch) {
      acc.add(r);
      versions.add(r);
      writer.tree.addLeaf(encodeReading(r));
    }
  await writer.flush(); // a site's next digester starts with none pending
  const result = acc.finish();
  return {
    readings: result.readings,
    quantities: result.quantities,
    estimate: result.estimate,
    completeness: result.completeness,
    quarantine: await repo.quarantine(tx, unit.id, period.start, period.end),
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
      calibrationVersions: versions.finish(),
      calibrationVersionsNote:
        "calibrationVersions: per device, the configuration version (its calibration: value sent = raw × gain + offset, per metric) in force over each span of the period, from the instant the device applied it, and how many of this report's readings it produced; version null: the factory calibration, before the device applied any version",
    },
    /** Where this digester's leaves lie in the report's tree. */
    leaves: { first: firstLeaf, count: writer.tree.size - firstLeaf },
  };
}

export type DigesterSection = Awaited<ReturnType<typeof digesterPass>>;
