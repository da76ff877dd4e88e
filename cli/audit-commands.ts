import type { Command } from 'commander';
import type { Config } from '../config/index.ts';
import { CliError } from './errors.ts';
import { withDatabase } from './context.ts';

/** `thamani audit verify|export`: works on the database directly (no running server needed). */
export function registerAuditCommands(program: Command, config: () => Config): void {
  const audit = program.command('audit').description('the tamper-evident audit store');

  audit
    .command('verify')
    .description('recompute the hash chain; exit 2 and name the first broken entry if it is broken')
    .action(() =>
      withDatabase(config(), async (rt) => {
        const { verifyAuditChain } = await import('../audit/index.ts');
        const result = await verifyAuditChain(rt.database.db);
        if (!result.ok) {
          throw new CliError(`audit chain BROKEN at entry ${result.firstBroken!.id}: ${result.firstBroken!.reason} (${result.checked} entries before it verified)`, 2);
        }
        process.stdout.write(`audit chain intact: ${result.checked} entries verified${result.head ? `; head #${result.head.id} ${result.head.hash}` : ''}\n`);
      }),
    );

  audit
    .command('export')
    .description('write every audit entry, oldest first, as NDJSON to stdout')
    .action(() =>
      withDatabase(config(), async (rt) => {
        const { exportAudit } = await import('../audit/index.ts');
        for await (const entry of exportAudit(rt.database.db, {})) {
          if (!process.stdout.write(`${JSON.stringify(entry)}\n`)) await new Promise((r) => process.stdout.once('drain', r));
        }
      }),
    );
}
