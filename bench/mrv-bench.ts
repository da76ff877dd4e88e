/**
 * `npm run bench -- mrv [--digesters 20] [--concurrency 4] [--database thamani_mrv_bench]`: issuing MRV reports.
 *
 * Seeds `--digesters` digesters with a month of 1-minute readings each (test/mrv-fixture.ts: 44 640
 * minutes, gaps, an offline day), then issues one report per digester through the real service
 * (archive copy, one streamed pass in leaf order, Merkle tree, Ed25519), `--concurrency` at a time
 * (the batch of `mrv issue --all`; default min(pool - 1, 4)), and reports the time per digester,
 * the total, the node's CPU per report, the process's peak RSS (the readings are streamed in
 * keyset batches, so it must not grow with the month or the fleet) and the archive's size per
 * digester-month and -year. The database: BENCH_DATABASE_URL's server (TimescaleDB or not), else
 * an embedded PostgreSQL in a temporary directory (bench/bench-db.ts).
 */
import { generateKeyPairSync } from 'node:crypto';
import { pino } from 'pino';
import { numberArg, stringArg } from './args.ts';
import { openBenchDatabase } from './bench-db.ts';
import { createAuditLog, ephemeralAuditSigner } from '../audit/index.ts';
import { createDatabase } from '../db/client.ts';
import { runMigrations } from '../db/migrate.ts';
import { timeseriesInfo } from '../db/timeseries.ts';
import { createMrvRepo, createMrvService, monthPeriod, mrvSignerFromKey } from '../mrv/index.ts';
import { defaultIssueConcurrency, issueBatch } from '../mrv/mrv-batch-service.ts';
import { seedDigesterMonth } from '../test/mrv-fixture.ts';

const digesters = numberArg('digesters', 20);
const poolMax = 8;
const concurrency = numberArg('concurrency', defaultIssueConcurrency(poolMax));
const logger = pino({ level: 'error' });

async function main(): Promise<void> {
  const server = await openBenchDatabase({
    name: stringArg('database', 'thamani_mrv_bench'),
    fresh: true,
    temporary: true,
    logger,
  });
  try {
    await runMigrations(server.url, logger);
    const database = createDatabase({ url: server.url, poolMax, logger });
    const mode = (await timeseriesInfo(database.pool)).mode;
    process.stdout.write(`database: ${server.source}, time-series path ${mode}\n`);
    const seedStarted = performance.now();
    const units: string[] = [];
    for (let i = 0; i < digesters; i += 1)
      units.push(
        (await seedDigesterMonth(database.pool, { name: `bench-${String(i).padStart(4, '0')}` }))
          .unitId,
      );
    const readings = Number(
      (await database.pool.query<{ n: string }>('SELECT count(*) AS n FROM readings')).rows[0]!.n,
    );
    process.stdout.write(
      `seeded ${digesters} digesters, ${readings} readings in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s\n`,
    );
    await database.pool.query('VACUUM ANALYZE');

    const mrv = createMrvService({
      db: database.db,
      repo: createMrvRepo(),
      audit: createAuditLog({ db: database.db, signer: ephemeralAuditSigner() }),
      signer: mrvSignerFromKey(generateKeyPairSync('ed25519').privateKey),
    });
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
    const rssBefore = process.memoryUsage().rss;
    const times: number[] = [];
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    // Issued through the batch (a bounded pool of workers, each report its own transaction);
    // with --concurrency 1, one after the other. Documents are not kept (memory constant in N).
    const since = new Map<string, number>();
    const timed = {
      issue: async (o: Parameters<typeof mrv.issue>[0]) => {
        const t0 = performance.now();
        try {
          return await mrv.issue(o);
        } finally {
          since.set(o.unit, performance.now() - t0);
        }
      },
    };
    const batch = await issueBatch(
      { mrv: timed },
      {
        units,
        ...monthPeriod('2026-10'),
        actor: { actorId: 'bench', actorRole: 'admin' },
        concurrency,
        onOutcome: (o) => {
          if (!o.ok) throw new Error(`${o.unit}: ${o.message}`);
          times.push(since.get(o.unit)!);
          since.delete(o.unit);
        },
      },
    );
    if (batch.issued !== digesters) throw new Error(`issued ${batch.issued} of ${digesters}`);
    const cpu = process.cpuUsage(cpuBefore);
    const totalMs = performance.now() - started;
    clearInterval(sampler);
    times.sort((a, b) => a - b);
    const mb = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;
    process.stdout.write(
      `issue, one digester-month (${(readings / digesters).toFixed(0)} readings)`.padEnd(56) +
        ` median ${(times[Math.floor(times.length / 2)]! / 1000).toFixed(2)} s, max ${(times[times.length - 1]! / 1000).toFixed(2)} s\n`,
    );
    process.stdout.write(
      `issue, all ${digesters} digesters, ${concurrency} at a time`.padEnd(56) +
        ` total ${(totalMs / 1000).toFixed(1)} s (${(((totalMs / digesters) * 200) / 1000).toFixed(0)} s for 200 at this rate)\n`,
    );
    process.stdout.write(
      `node CPU per report (user + system)`.padEnd(56) +
        ` ${((cpu.user + cpu.system) / 1000 / digesters).toFixed(0)} ms\n`,
    );
    process.stdout.write(
      `process RSS before issuing / peak while issuing`.padEnd(56) +
        ` ${mb(rssBefore)} / ${mb(peakRss)}\n`,
    );
    const size = await database.pool.query<{ archive: string; rows: string }>(
      "SELECT pg_total_relation_size('mrv_readings_archive')::text AS archive, (SELECT count(*) FROM mrv_readings_archive)::text AS rows",
    );
    const perMonth = Number(size.rows[0]!.archive) / digesters;
    process.stdout.write(
      `archive (table + indexes) per digester-month`.padEnd(56) +
        ` ${(perMonth / 1048576).toFixed(2)} MiB (${(Number(size.rows[0]!.archive) / Number(size.rows[0]!.rows)).toFixed(0)} B per reading); per digester-year ${((perMonth * 12) / 1048576).toFixed(0)} MiB\n`,
    );
    const leaves = await database.pool.query<{ bytes: string }>(
      "SELECT pg_total_relation_size('mrv_report_leaf_hashes')::text AS bytes",
    );
    const leavesPerMonth = Number(leaves.rows[0]!.bytes) / digesters;
    process.stdout.write(
      `leaf hashes (exact-leaf localisation) per digester-month`.padEnd(56) +
        ` ${(leavesPerMonth / 1048576).toFixed(2)} MiB; per digester-year ${((leavesPerMonth * 12) / 1048576).toFixed(0)} MiB\n`,
    );
    await database.close();
  } finally {
    await server.stop();
  }
}

await main();
