/**
 * `npm run bench -- audit [--entries 2000] [--writers 8]`: what signing costs the audit log.
 *
 * Appends are serialised by the chain lock (audit/audit-service.ts), and the signature (Ed25519
 * over a hash that covers the position and prev_hash) is made inside it. This measures the
 * signature alone, the appends per second of `--writers` concurrent writers through the real
 * record() on an embedded PostgreSQL, and how fast a verifier checks the result.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { numberArg } from './args.ts';
import {
  createAuditLog,
  ephemeralAuditSigner,
  publicKeysOf,
  signedEntryHash,
  verifyAuditChain,
} from '../audit/index.ts';
import { verifyEntrySignature } from '../audit/audit-signer.ts';
import { createDatabase } from '../db/client.ts';
import { startEmbeddedPostgres } from '../db/embedded-postgres.ts';
import { runMigrations } from '../db/migrate.ts';

const entries = numberArg('entries', 2000);
const writers = numberArg('writers', 8);
const logger = pino({ level: 'error' });

function perOp(label: string, n: number, fn: () => void): number {
  for (let i = 0; i < 200; i++) fn(); // warm up
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  const us = Number(process.hrtime.bigint() - started) / 1000 / n;
  process.stdout.write(`${label.padEnd(44)} ${us.toFixed(1)} µs/op\n`);
  return us;
}

async function main(): Promise<void> {
  const signer = ephemeralAuditSigner();
  const keys = publicKeysOf(signer);
  const fields = {
    seq: 1,
    keyId: signer.keyId,
    at: new Date(),
    actorId: 'u1',
    actorRole: 'admin',
    ip: '10.0.0.1',
    userAgent: 'bench',
    requestId: 'r1',
    action: 'device.update',
    targetType: 'device',
    targetId: 'd1',
    before: { status: 'pending' },
    after: { status: 'active' },
  };
  const prev = Buffer.alloc(32);
  perOp('hash (canonical JSON + SHA-256)', 20_000, () => signedEntryHash(fields, prev));
  const hash = signedEntryHash(fields, prev);
  const signUs = perOp('sign (Ed25519)', 20_000, () => signer.signEntry(hash));
  const sig = signer.signEntry(hash);
  perOp('verify (Ed25519)', 20_000, () => verifyEntrySignature(keys.get(signer.keyId)!, hash, sig));

  const dir = await mkdtemp(path.join(os.tmpdir(), 'thamani-audit-bench-'));
  const server = await startEmbeddedPostgres({
    dataDir: dir,
    port: 20000 + Math.floor(Math.random() * 20000),
    logger,
  });
  try {
    await runMigrations(server.url, logger);
    const database = createDatabase({ url: server.url, poolMax: writers + 2, logger });
    // The same appends with a signer that does no work: the difference is what signing costs.
    const unsigned = { ...signer, signEntry: () => Buffer.alloc(64) };
    const appendMs = async (s: typeof signer): Promise<number> => {
      const audit = createAuditLog({ db: database.db, signer: s });
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: writers }, async () => {
          while (next < entries) {
            const i = next++;
            await audit.record({
              actorId: `u${i % 7}`,
              actorRole: 'admin',
              ip: '10.0.0.1',
              userAgent: 'bench',
              requestId: `r${i}`,
              action: 'device.update',
              targetType: 'device',
              targetId: `d${i}`,
              before: { status: 'pending' },
              after: { status: 'active', i },
            });
          }
        }),
      );
      return performance.now() - started;
    };
    const baseline = await appendMs(unsigned);
    await database.pool.query('ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_truncate');
    await database.pool.query('TRUNCATE audit_log');
    await database.pool.query('ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_truncate');
    const signed = await appendMs(signer);
    const line = (label: string, ms: number) =>
      process.stdout.write(
        `${label.padEnd(44)} ${((entries / ms) * 1000).toFixed(0)} /s (${(ms / entries).toFixed(2)} ms per entry)\n`,
      );
    line(`appends, no signature (${writers} writers)`, baseline);
    line(`appends, signed (${writers} writers)`, signed);
    process.stdout.write(
      `${'signing share of an append'.padEnd(44)} ${((signUs / 1000 / (signed / entries)) * 100).toFixed(1)} % (Ed25519 inside the chain lock)\n`,
    );
    const vStarted = performance.now();
    const result = await verifyAuditChain(database.db, { publicKeys: keys });
    const vMs = performance.now() - vStarted;
    if (!result.ok) throw new Error(`verification failed: ${JSON.stringify(result.firstBroken)}`);
    process.stdout.write(
      `verify from the database`.padEnd(44) +
        ` ${((result.checked / vMs) * 1000).toFixed(0)} entries/s (${result.checked} entries)\n`,
    );
    await database.close();
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
