import type { Logger } from 'pino';
import type { DbExecutor } from '../db/scoped.ts';
import { signWebhook } from '../dashboards/webhook.ts';
import { GENESIS_HASH, type SignedCheckpoint } from './audit-fns.ts';
import { writeCheckpointFile } from './audit-checkpoint-files.ts';
import { auditRepo } from './audit-repo.ts';
import type { AuditSigner } from './audit-signer.ts';
import { MAX_CLOCK_STEP_MS } from './audit-service.ts';

/**
 * Signed checkpoints of the chain head (position, head hash, time), written outside the
 * database: a file in AUDIT_CHECKPOINT_DIR and, when ALERT_WEBHOOK_URL is set, a POST to it.
 * A checkpoint makes removal of the tail detectable (RFC 9162 §2.1.4's signed tree head plays
 * the same role); the chain itself only shows that what is there has not been changed.
 */
export function createAuditCheckpointer(deps: {
  db: DbExecutor;
  signer: AuditSigner;
  dir: string;
  webhook?: { url: string; secret: string } | undefined;
  now?: () => Date;
}) {
  const now = deps.now ?? (() => new Date());

  async function publish(cp: SignedCheckpoint): Promise<void> {
    if (!deps.webhook) return;
    const body = JSON.stringify({ event: 'audit.checkpoint', checkpoint: cp });
    const timestamp = Math.floor(Date.now() / 1000);
    const res = await fetch(deps.webhook.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'thamani-iot-audit/1',
        'x-thamani-event': 'audit.checkpoint',
        'x-thamani-timestamp': String(timestamp),
        'x-thamani-signature': signWebhook(deps.webhook.secret, timestamp, body),
      },
      body,
      redirect: 'error',
      signal: AbortSignal.timeout(5000),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`audit checkpoint webhook answered HTTP ${res.status}`);
  }

  return {
    /**
     * Signs the current head. Committed entries always form a prefix of the chain (each append
     * holds the chain lock until it commits), so any head read here is one the chain had.
     */
    async checkpoint(
      opts: { unlessSize?: number } = {},
    ): Promise<
      { file: string; checkpoint: SignedCheckpoint; published: Promise<void> } | undefined
    > {
      const head = await auditRepo.head(deps.db);
      if (opts.unlessSize !== undefined && (head?.seq ?? 0) === opts.unlessSize) return undefined;
      const t = now();
      const body = {
        v: 1 as const,
        size: head?.seq ?? 0,
        headHash: (head?.hash ?? GENESIS_HASH).toString('hex'),
        // Never before the entry it covers, within the append's bound (audit-service.ts).
        at: (head && head.at > t && head.at.getTime() - t.getTime() <= MAX_CLOCK_STEP_MS
          ? head.at
          : t
        ).toISOString(),
        keyId: deps.signer.keyId,
      };
      const checkpoint: SignedCheckpoint = { ...body, signature: deps.signer.signCheckpoint(body) };
      const file = await writeCheckpointFile(deps.dir, checkpoint);
      return { file, checkpoint, published: publish(checkpoint) };
    },
  };
}

export type AuditCheckpointer = ReturnType<typeof createAuditCheckpointer>;

/** A checkpoint at start, then every interval in which the head moved (AUDIT_CHECKPOINT_MINUTES). */
export function startAuditCheckpoints(deps: {
  checkpointer: AuditCheckpointer;
  intervalMs: number;
  logger: Logger;
}): () => void {
  let lastSize: number | undefined;
  let running = false;
  const run = async (): Promise<void> => {
    // A slow pass (database, webhook) is never overlapped by the next one.
    if (running) return;
    running = true;
    try {
      const made = await deps.checkpointer.checkpoint({ unlessSize: lastSize });
      if (!made) return;
      const { file, checkpoint, published } = made;
      deps.logger.info({ file, size: checkpoint.size }, 'audit checkpoint written');
      lastSize = checkpoint.size;
      await published.catch((err: unknown) =>
        deps.logger.warn(
          { err },
          'audit checkpoint not delivered to the webhook; the file was written',
        ),
      );
    } catch (err) {
      deps.logger.error({ err }, 'audit checkpoint failed; will retry');
    } finally {
      running = false;
    }
  };
  void run();
  const timer = setInterval(() => void run(), deps.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
