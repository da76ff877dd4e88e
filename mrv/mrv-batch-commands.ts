import { CliError } from '../cli/errors.ts';
import type { CliContext } from '../cli/context.ts';
import type { MrvService } from './mrv-service.ts';

/**
 * `thamani mrv issue --month M --all | --units a,b,c [--concurrency n] [--out-dir dir]`: the
 * month's reports of many digesters at once (mrv-batch-service.ts). One line per digester on
 * stdout as each finishes; exit code 1 if any was refused (already issued, not a digester).
 */
export async function runIssueBatch(
  ctx: Pick<CliContext, 'db' | 'config' | 'actor'>,
  mrv: Pick<MrvService, 'issue'>,
  o: { month: string; all?: boolean; units?: string; concurrency?: string; outDir?: string },
): Promise<void> {
  const [{ issueBatch, defaultIssueConcurrency }, { monthPeriod }, { createMrvRepo }] =
    await Promise.all([
      import('./mrv-batch-service.ts'),
      import('./mrv-service.ts'),
      import('./mrv-repo.ts'),
    ]);
  if (o.all && o.units) throw new CliError('--all or --units, not both', 64);
  const period = monthPeriod(o.month);
  const units = o.all
    ? await createMrvRepo().digesters(ctx.db)
    : (o.units ?? '')
        .split(',')
        .map((u) => u.trim())
        .filter((u) => u !== '');
  if (units.length === 0) throw new CliError(o.all ? 'no digester' : '--units names none', 64);
  const concurrency =
    o.concurrency === undefined
      ? defaultIssueConcurrency(ctx.config.db.poolMax)
      : Number(o.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency >= ctx.config.db.poolMax)
    throw new CliError(
      `--concurrency is a whole number from 1 to ${ctx.config.db.poolMax - 1} (DB_POOL_MAX less one)`,
      64,
    );
  const { mkdir, writeFile, rename } = await import('node:fs/promises');
  const path = await import('node:path');
  if (o.outDir) await mkdir(o.outDir, { recursive: true });
  const result = await issueBatch(
    { mrv },
    {
      units,
      ...period,
      actor: ctx.actor,
      concurrency,
      onOutcome: async (r) => {
        if (!r.ok) {
          process.stdout.write(`refused ${r.unit}: ${r.message}\n`);
          return;
        }
        if (o.outDir) {
          const file = path.join(o.outDir, `${r.id}.json`);
          await writeFile(`${file}.tmp`, r.document, { mode: 0o644 });
          await rename(`${file}.tmp`, file);
        }
        process.stdout.write(`issued ${r.unit}: report ${r.id} version ${r.version}\n`);
      },
    },
  );
  process.stderr.write(`${result.issued} issued, ${result.refused} refused\n`);
  if (result.refused > 0) throw new CliError(`${result.refused} digester(s) refused`, 1);
}
