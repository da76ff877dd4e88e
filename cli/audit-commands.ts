import { createWriteStream } from 'node:fs';
import { readFile, rename } from 'node:fs/promises';
import { once } from 'node:events';
import type { Command } from 'commander';
import { describeResult, verifyAuditExport } from '../audit/audit-verify-offline.ts';
import type { Config } from '../config/index.ts';
import { CliError } from './errors.ts';
import { withDatabase } from './context.ts';

interface VerifyOptions {
  export?: string;
  checkpoints?: string;
  publicKey?: string;
  json?: boolean;
}

/**
 * `thamani audit verify|export|checkpoint`. verify and checkpoint on the database work without a
 * running server; `verify --export` works on an export alone, without any database (the same
 * code as bin/thamani-audit-verify.js, for a third party).
 */
export function registerAuditCommands(program: Command, config: () => Config): void {
  const audit = program.command('audit').description('the tamper-evident audit store');

  audit
    .command('verify')
    .description(
      'check every signature, hash link, position, time and signed checkpoint; exit 2 and name the first broken entry',
    )
    .option(
      '--export <file>',
      'verify this export (NDJSON from `audit export`) offline, without the database',
    )
    .option(
      '--checkpoints <dir>',
      'signed checkpoint files (default AUDIT_CHECKPOINT_DIR; offline: none unless given)',
    )
    .option(
      '--public-key <file>',
      "trusted audit public key(s), PEM (required with --export; default: this installation's key)",
    )
    .option('--json', 'the full result as one JSON object')
    .action(async (o: VerifyOptions) => {
      if (o.export) {
        if (!o.publicKey)
          throw new CliError(
            '--export needs --public-key (the audit-signing.pub of the installation that wrote the log)',
            64,
          );
        return report(
          await verifyAuditExport({
            exportFile: o.export,
            checkpointDir: o.checkpoints,
            publicKeyFile: o.publicKey,
          }),
          o.json,
        );
      }
      const cfg = config();
      return withDatabase(cfg, async (rt, logger) => {
        const {
          openAuditSigner,
          parsePublicKeys,
          publicKeysOf,
          readCheckpointFiles,
          verifyAuditChain,
        } = await import('../audit/index.ts');
        const signer = await openAuditSigner(cfg.pki, logger);
        const publicKeys = o.publicKey
          ? parsePublicKeys(await readFile(o.publicKey, 'utf8'))
          : publicKeysOf(signer);
        const checkpoints = await readCheckpointFiles(o.checkpoints ?? cfg.audit.checkpointDir);
        report(await verifyAuditChain(rt.database.db, { publicKeys, checkpoints }), o.json);
      });
    });

  audit
    .command('export')
    .description(
      'write every audit entry in chain order as NDJSON (what `audit verify --export` checks)',
    )
    .option('--out <file>', 'write to this file (default: stdout)')
    .action((o: { out?: string }) =>
      withDatabase(config(), async (rt) => {
        const tmp = o.out ? `${o.out}.tmp` : undefined;
        const out = tmp ? createWriteStream(tmp, { mode: 0o644 }) : process.stdout;
        let n = 0;
        const { exportAudit } = await import('../audit/index.ts');
        for await (const entry of exportAudit(rt.database.db, {})) {
          n += 1;
          if (!out.write(`${JSON.stringify(entry)}\n`)) await once(out, 'drain');
        }
        if (tmp && o.out) {
          const file = out as ReturnType<typeof createWriteStream>;
          await new Promise<void>((resolve, reject) =>
            file.end((err?: Error | null) => (err ? reject(err) : resolve())),
          );
          await rename(tmp, o.out);
          process.stderr.write(`exported ${n} audit entries to ${o.out}\n`);
        }
      }),
    );

  audit
    .command('checkpoint')
    .description(
      'sign the current chain head now and write it to AUDIT_CHECKPOINT_DIR (and the alert webhook, if set)',
    )
    .option('--dir <dir>', 'write here instead of AUDIT_CHECKPOINT_DIR')
    .option('--json')
    .action((o: { dir?: string; json?: boolean }) => {
      const cfg = config();
      return withDatabase(cfg, async (rt, logger) => {
        const { createAuditCheckpointer, openAuditSigner } = await import('../audit/index.ts');
        const signer = await openAuditSigner(cfg.pki, logger);
        const { webhookUrl, webhookSecret } = cfg.alerts;
        const checkpointer = createAuditCheckpointer({
          db: rt.database.db,
          signer,
          dir: o.dir ?? cfg.audit.checkpointDir,
          webhook:
            webhookUrl && webhookSecret ? { url: webhookUrl, secret: webhookSecret } : undefined,
        });
        const made = (await checkpointer.checkpoint())!;
        const delivered = await made.published.then(
          () => undefined,
          (err: unknown) => (err instanceof Error ? err.message : String(err)),
        );
        if (delivered)
          process.stderr.write(
            `warning: checkpoint written but not delivered to the webhook: ${delivered}\n`,
          );
        process.stdout.write(
          o.json
            ? `${JSON.stringify({ file: made.file, checkpoint: made.checkpoint })}\n`
            : `audit checkpoint: ${made.checkpoint.size} entries, head ${made.checkpoint.headHash}, signed by key ${made.checkpoint.keyId}\n  ${made.file}\n`,
        );
      });
    });
}

function report(
  result: Awaited<ReturnType<typeof verifyAuditExport>>,
  json: boolean | undefined,
): void {
  const { text, exitCode } = describeResult(result);
  if (exitCode !== 0) {
    if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
    throw new CliError(text.trimEnd(), exitCode);
  }
  process.stdout.write(json ? `${JSON.stringify(result)}\n` : text);
}
