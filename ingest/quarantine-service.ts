import type { AuditActor, AuditLog } from '../audit/index.ts';
import type { Db } from '../db/client.ts';
import type { QuarantineRow } from '../db/schema/index.ts';
import { ingestRepo } from './ingest-repo.ts';
import type { Ingest } from './ingest-service.ts';
import createError from '@fastify/error';

export const QuarantineErrors = {
  NotFound: createError('QUARANTINE_NOT_FOUND', 'Quarantine item %s not found', 404),
  NotOpen: createError('QUARANTINE_NOT_OPEN', 'Quarantine item %s is %s', 409),
};

/** Technicians look at what was rejected and, after a rule change, replay it through ingest. */
export function createQuarantineService(deps: { db: Db; ingest: Ingest; audit: AuditLog }) {
  return {
    async list(
      filter: {
        deviceId?: string;
        status?: QuarantineRow['status'];
        before?: number;
        reason?: string;
        limit?: number;
      } = {},
    ): Promise<(Omit<QuarantineRow, 'payload'> & { payload: string })[]> {
      const rows = await ingestRepo.quarantined(deps.db, {
        ...filter,
        limit: Math.min(filter.limit ?? 50, 500),
      });
      return rows.map((r) => ({ ...r, payload: r.payload.toString('utf8') }));
    },

    /**
     * Runs the stored payload through today's rules. Whatever now passes is stored (once: replays
     * are idempotent); the item is closed with the outcome, or stays open with the new reasons.
     */
    async replay(
      id: number,
      actor: AuditActor,
    ): Promise<{
      id: number;
      status: string;
      stored: number;
      duplicates: number;
      stillRejected: unknown[];
    }> {
      const item = await ingestRepo.quarantineItem(deps.db, id);
      if (!item) throw new QuarantineErrors.NotFound(String(id));
      if (item.status !== 'open') throw new QuarantineErrors.NotOpen(String(id), item.status);
      // INTERNAL_REJECT keeps messages of every upstream topic; only telemetry goes through ingest again.
      if (!item.topic.endsWith('/telemetry'))
        throw new QuarantineErrors.NotOpen(
          String(id),
          `from ${item.topic}, not telemetry, and cannot be replayed`,
        );
      if (item.payloadSize > item.payload.length)
        throw new QuarantineErrors.NotOpen(
          String(id),
          'truncated (payload over the quarantine cap) and cannot be replayed',
        );
      const kind = await ingestRepo.deviceKind(deps.db, item.deviceId);
      const session = {
        deviceId: item.deviceId,
        unitId: item.unitId,
        kind: kind ?? 'biodigester',
        certSerial: 'replay',
        certFingerprint: 'replay',
        clientId: item.deviceId,
        remoteAddress: undefined,
      };
      // A batch item is replayed alone: it was quarantined alone.
      let payload = item.payload;
      if (item.batchIndex !== null) {
        const parsed = JSON.parse(item.payload.toString('utf8')) as { batch?: unknown[] };
        payload = Buffer.from(JSON.stringify(parsed.batch?.[item.batchIndex] ?? {}));
      }
      const result = await deps.ingest.ingest(session, item.topic, payload, new Date(), {
        replay: true,
      });
      // Refused again for its instant (TS_CONFLICT: another reading holds it) counts as still rejected.
      const still = [...result.reasons.flatMap((r) => r.reasons), ...result.refused];
      const status = still.length === 0 ? 'replayed' : 'open';
      const outcome = {
        stored: result.stored,
        duplicates: result.duplicates,
        stillRejected: still,
        newQuarantineIds: result.quarantineIds,
      };
      await deps.db.transaction(async (tx) => {
        // The replay's own rejections were quarantined again: keep one open item, not two.
        await ingestRepo.closeQuarantineItem(tx, id, {
          status: status === 'replayed' ? 'replayed' : 'discarded',
          replayedAt: new Date(),
          replayResult: outcome,
        });
        await deps.audit.record(
          {
            ...actor,
            action: 'quarantine.replay',
            targetType: 'quarantine',
            targetId: String(id),
            before: { status: 'open', reasons: item.reasons },
            after: { status, ...outcome },
          },
          tx,
        );
      });
      return {
        id,
        status,
        stored: result.stored,
        duplicates: result.duplicates,
        stillRejected: still,
      };
    },

    /** Closes an item nobody will replay (a test message, a device since fixed); audited like a replay. */
    async discard(id: number, actor: AuditActor): Promise<{ id: number; status: 'discarded' }> {
      const item = await ingestRepo.quarantineItem(deps.db, id);
      if (!item) throw new QuarantineErrors.NotFound(String(id));
      if (item.status !== 'open') throw new QuarantineErrors.NotOpen(String(id), item.status);
      await deps.db.transaction(async (tx) => {
        await ingestRepo.closeQuarantineItem(tx, id, {
          status: 'discarded',
          replayedAt: new Date(),
          replayResult: { discarded: true },
        });
        await deps.audit.record(
          {
            ...actor,
            action: 'quarantine.discard',
            targetType: 'quarantine',
            targetId: String(id),
            before: { status: 'open', reasons: item.reasons },
            after: { status: 'discarded' },
          },
          tx,
        );
      });
      return { id, status: 'discarded' };
    },
  };
}

export type QuarantineService = ReturnType<typeof createQuarantineService>;
