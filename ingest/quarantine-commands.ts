import type { Command } from 'commander';
import type { Config } from '../config/index.ts';
import { output, withCli, type CliContext } from '../cli/context.ts';

/** `thamani quarantine list|replay`. */
export function registerQuarantineCommands(program: Command, config: () => Config): void {
  const q = program.command('quarantine').description('rejected telemetry');
  const service = async (ctx: Pick<CliContext, 'db' | 'pool' | 'config' | 'auditSigner'>) => {
    const [{ pino }, { createAuditLog }, { createIngest }, { createQuarantineService }] =
      await Promise.all([
        import('pino'),
        import('../audit/index.ts'),
        import('./ingest-service.ts'),
        import('./quarantine-service.ts'),
      ]);
    const ingest = createIngest({
      pool: ctx.pool,
      logger: pino({ level: 'silent' }),
      config: ctx.config.ingest,
      publisher: { publish: () => Promise.resolve() },
    });
    return {
      ingest,
      quarantine: createQuarantineService({
        db: ctx.db,
        ingest,
        audit: createAuditLog({ db: ctx.db, signer: ctx.auditSigner }),
      }),
    };
  };
  q.command('list')
    .option('--device <id>')
    .option('--status <status>', 'open | replayed | discarded', 'open')
    .option('--limit <n>', '', (v) => Number.parseInt(v, 10), 50)
    .option('--json')
    .action(
      (o: {
        device?: string;
        status: 'open' | 'replayed' | 'discarded';
        limit: number;
        json?: boolean;
      }) =>
        withCli(config(), async (ctx) => {
          const items = await (
            await service(ctx)
          ).quarantine.list({
            ...(o.device ? { deviceId: o.device } : {}),
            status: o.status,
            limit: o.limit,
          });
          output(
            o.json,
            { items },
            () =>
              items
                .map(
                  (i) =>
                    `#${i.id}  ${i.receivedAt.toISOString()}  ${i.deviceId.padEnd(18)} ${i.reasons.map((r) => `${r.code}(${r.field})`).join(', ')}`,
                )
                .join('\n') || 'Nothing in quarantine.',
          );
        }),
    );
  q.command('replay <id>')
    .option('--json')
    .description('run a quarantined item through the current rules')
    .action((id: string, o: { json?: boolean }) =>
      withCli(config(), async (ctx) => {
        const s = await service(ctx);
        const r = await s.quarantine.replay(Number.parseInt(id, 10), ctx.actor);
        await s.ingest.stop();
        output(
          o.json,
          r,
          () =>
            `#${r.id}: ${r.status}; stored ${r.stored}, duplicates ${r.duplicates}${r.stillRejected.length ? `; still rejected: ${JSON.stringify(r.stillRejected)}` : ''}`,
        );
      }),
    );
}
