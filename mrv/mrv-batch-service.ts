import type { AuditActor } from '../audit/index.ts';
import { MrvError } from './mrv-errors.ts';
import type { MrvService } from './mrv-service.ts';

/** What one unit of a batch came to: its report, or why it has none (the batch goes on). */
export type BatchOutcome =
  | { unit: string; ok: true; id: string; version: number; document: string }
  | { unit: string; ok: false; code: string; message: string };

/**
 * The number of reports issued at once by default: each holds one pooled connection for its
 * transaction (and the leaf-hash writes ride on it), so at most the pool less one, kept for the
 * audit log and whatever else shares the pool; and no more than 4, beyond which the node and
 * PostgreSQL (sharing the machine's cores) only take turns.
 */
export const defaultIssueConcurrency = (poolMax: number): number =>
  Math.max(1, Math.min(poolMax - 1, 4));

/**
 * Issues the reports of many digesters for one period with a bounded pool of `concurrency`
 * workers (issue 20: 200 digesters in under 2 minutes). Each report is its own transaction, as
 * `issue` makes it; one unit's refusal (already issued, not a digester) is reported and the others
 * go on. Outcomes are handed to `onOutcome` as they come and not kept, so memory is bounded by
 * the number of workers, not by the number of units.
 */
export async function issueBatch(
  deps: { mrv: Pick<MrvService, 'issue'> },
  opts: {
    units: readonly string[];
    start: Date;
    end: Date;
    actor: AuditActor;
    concurrency: number;
    onOutcome: (o: BatchOutcome) => void | Promise<void>;
  },
): Promise<{ issued: number; refused: number }> {
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1 || opts.concurrency > 64)
    throw new MrvError.BAD_BATCH(
      `concurrency is a whole number from 1 to 64, not ${opts.concurrency}`,
    );
  const units = [...new Set(opts.units)];
  if (units.length === 0) throw new MrvError.BAD_BATCH('no digester to issue for');
  let next = 0;
  let issued = 0;
  let refused = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < units.length; i = next++) {
      const unit = units[i]!;
      let outcome: BatchOutcome;
      try {
        const r = await deps.mrv.issue({
          unit,
          start: opts.start,
          end: opts.end,
          actor: opts.actor,
        });
        outcome = { unit, ok: true, ...r };
        issued += 1;
      } catch (err) {
        const e = err as { code?: unknown; statusCode?: unknown; message?: unknown };
        // Only the service's refusals of this unit (4xx errors) are per unit; anything else (the
        // database gone) ends the batch.
        const refusal =
          (typeof e.statusCode === 'number' && e.statusCode < 500) ||
          (typeof e.code === 'string' && e.code.startsWith('MRV_'));
        if (!refusal) throw err;
        outcome = { unit, ok: false, code: String(e.code), message: String(e.message) };
        refused += 1;
      }
      await opts.onOutcome(outcome);
    }
  };
  const workers = Array.from({ length: Math.min(opts.concurrency, units.length) }, worker);
  const settled = await Promise.allSettled(workers);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed?.status === 'rejected') throw failed.reason;
  return { issued, refused };
}
