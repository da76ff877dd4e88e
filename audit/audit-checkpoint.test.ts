import { createServer, type IncomingMessage } from 'node:http';
import { mkdtemp, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, testLogger, type TestDatabase } from '../test/db.ts';
import { testAuditPublicKeys, testAuditSigner } from '../test/audit-key.ts';
import { signWebhook } from '../dashboards/webhook.ts';
import { verifyCheckpointSignature } from './audit-signer.ts';
import {
  createAuditCheckpointer,
  createAuditLog,
  readCheckpointFiles,
  startAuditCheckpoints,
  type SignedCheckpoint,
} from './index.ts';

let t: TestDatabase;
const received: { headers: IncomingMessage['headers']; body: string }[] = [];
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.on('end', () => {
    received.push({ headers: req.headers, body });
    res.writeHead(204).end();
  });
});

beforeAll(async () => {
  t = await createTestDatabase();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  deadlineMs = 60_000,
): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('scheduled checkpoints', () => {
  it('writes a signed checkpoint at start and after the head moves (not while it stands still), to the directory and the webhook', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'thamani-cp-sched-'));
    const secret = 'checkpoint webhook secret';
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const checkpointer = createAuditCheckpointer({
      db: t.database.db,
      signer: testAuditSigner,
      dir,
      webhook: { url, secret },
    });
    // Counts the scheduler's passes, so "several idle intervals" is a condition, not a sleep.
    let passes = 0;
    const counted = {
      checkpoint: (o?: { unlessSize?: number }) => ((passes += 1), checkpointer.checkpoint(o)),
    };
    const stop = startAuditCheckpoints({
      checkpointer: counted,
      intervalMs: 100,
      logger: testLogger,
    });
    try {
      const files = async (n: number) => {
        const names = (await readdir(dir)).filter((f) => f.endsWith('.json'));
        return names.length >= n ? names : undefined;
      };
      await until('the start checkpoint', () => files(1));
      await until('its webhook delivery', () =>
        Promise.resolve(received.length >= 1 ? true : undefined),
      );
      // Several passes with the head unchanged: still one file, one delivery.
      const seen = passes;
      await until('three idle passes', () =>
        Promise.resolve(passes >= seen + 3 ? true : undefined),
      );
      expect(await readdir(dir)).toHaveLength(1);
      expect(received).toHaveLength(1);
      await createAuditLog({ db: t.database.db, signer: testAuditSigner }).record({
        actorId: 'u',
        actorRole: 'admin',
        action: 'site.create',
        targetType: 'site',
      });
      await until('a checkpoint of the new head', () => files(2));
      const cps = await readCheckpointFiles(dir);
      expect(cps.map((c) => c.checkpoint.size).sort()).toEqual([0, 1]);
      for (const { checkpoint } of cps)
        expect(
          verifyCheckpointSignature(
            testAuditPublicKeys.get(checkpoint.keyId)!,
            checkpoint,
            checkpoint.signature,
          ),
        ).toBe(true);
      const hook = await until('the webhook delivery', () =>
        Promise.resolve(received.length >= 2 ? received : undefined),
      );
      const last = hook[hook.length - 1]!;
      expect(last.headers['x-thamani-event']).toBe('audit.checkpoint');
      expect(last.headers['x-thamani-signature']).toBe(
        signWebhook(secret, Number(last.headers['x-thamani-timestamp']), last.body),
      );
      const sent = (JSON.parse(last.body) as { checkpoint: SignedCheckpoint }).checkpoint;
      expect(sent).toMatchObject({ size: 1, keyId: testAuditSigner.keyId });
      expect(
        verifyCheckpointSignature(testAuditPublicKeys.get(sent.keyId)!, sent, sent.signature),
      ).toBe(true);
    } finally {
      stop();
    }
  });
});
