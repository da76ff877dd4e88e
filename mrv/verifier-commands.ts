import type { Command } from 'commander';
import type { Config } from '../config/index.ts';
import { CliError } from '../cli/errors.ts';
import { output, withCli, type CliContext } from '../cli/context.ts';

/**
 * `thamani mrv verifier create|list|revoke`: time-limited, read-only access for a verification
 * body to the reports of named digesters over a range of months (docs/mrv.md, "Verifier
 * access"). The owner's work (the API role can neither read nor write tokens); each change is
 * audited. The secret is printed once.
 */
export function registerVerifierCommands(mrv: Command, config: () => Config): void {
  const verifier = mrv
    .command('verifier')
    .description("a verification body's read-only access to named digesters and months");
  const admin = async (ctx: Pick<CliContext, 'db' | 'auditSigner'>) => {
    const [{ createAuditLog }, { createVerifierAdmin }, { createVerifierRepo }] = await Promise.all(
      [import('../audit/index.ts'), import('./verifier-service.ts'), import('./verifier-repo.ts')],
    );
    return createVerifierAdmin({
      db: ctx.db,
      repo: createVerifierRepo(),
      audit: createAuditLog({ db: ctx.db, signer: ctx.auditSigner }),
    });
  };
  const collect = (v: string, prev: string[] = []) => [...prev, v];

  verifier
    .command('create')
    .description('create a verifier token; prints its secret once (give it to the verifier)')
    .requiredOption('--name <text>', 'who it is for, e.g. "Gold Standard VVB, audit 2026"')
    .requiredOption('--unit <unit>', 'a digester (id or name); repeat for several', collect)
    .requiredOption('--from <YYYY-MM>', 'the first month it opens (UTC)')
    .option('--to <YYYY-MM>', 'the last month it opens (default: --from)')
    .option('--days <n>', 'how long the access lasts (1–366)', '30')
    .option('--json')
    .action(
      (o: {
        name: string;
        unit: string[];
        from: string;
        to?: string;
        days: string;
        json?: boolean;
      }) =>
        withCli(config(), async (ctx) => {
          const days = Number(o.days);
          if (!Number.isInteger(days)) throw new CliError('--days is a whole number of days', 64);
          const { secret, token } = await (
            await admin(ctx)
          ).create(
            { name: o.name, units: o.unit, fromMonth: o.from, toMonth: o.to ?? o.from, days },
            ctx.actor,
          );
          output(
            o.json,
            { secret, ...token },
            () =>
              `verifier ${token.id} "${token.name}": ${token.unitIds.length} digester(s), ${token.periodFrom.toISOString()} to ${token.periodTo.toISOString()}, expires ${token.expiresAt.toISOString()}\n` +
              `secret (shown once; the verifier enters it at https://<host>/verifier):\n${secret}`,
          );
        }),
    );

  verifier
    .command('list')
    .description('verifier tokens, newest first (never their secrets)')
    .option('--json')
    .action((o: { json?: boolean }) =>
      withCli(config(), async (ctx) => {
        const items = await (await admin(ctx)).list();
        const now = Date.now();
        output(
          o.json,
          { items },
          () =>
            items
              .map(
                (t) =>
                  `${t.id}  "${t.name}"  ${t.unitIds.length} digester(s)  ${t.periodFrom.toISOString().slice(0, 7)}..${new Date(t.periodTo.getTime() - 1).toISOString().slice(0, 7)}  ${t.revokedAt ? 'revoked' : t.expiresAt.getTime() <= now ? 'expired' : `expires ${t.expiresAt.toISOString()}`}`,
              )
              .join('\n') || 'No verifier token.',
        );
      }),
    );

  verifier
    .command('revoke <id>')
    .description('end a verifier token now')
    .action((id: string) =>
      withCli(config(), async (ctx) => {
        if (!(await (await admin(ctx)).revoke(id, ctx.actor)))
          throw new CliError(`no live verifier token ${id}`, 1);
        process.stdout.write(`verifier ${id} revoked\n`);
      }),
    );
}
