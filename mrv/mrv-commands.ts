import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Config } from '../config/index.ts';
import { CliError } from '../cli/errors.ts';
import { output, withCli, type CliContext } from '../cli/context.ts';
import { registerVerifierCommands } from './verifier-commands.ts';

/**
 * `thamani mrv key|issue|verify|prove|export|list|calibrate|params`. `verify` needs no database
 * (the same code as bin/thamani-mrv-verify.js); the others open it when they run. Heavy modules
 * are loaded in the actions, so `thamani --help` loads none of them.
 */
export function registerMrvCommands(program: Command, config: () => Config): void {
  const mrv = program
    .command('mrv')
    .description('carbon MRV: signed, verifiable biogas and methane reports (docs/mrv.md)');

  const service = async (ctx: Pick<CliContext, 'db' | 'auditSigner' | 'config' | 'ca'>) => {
    const [{ createAuditLog }, { createMrvService }, { createMrvRepo }, { loadOrCreateMrvSigner }] =
      await Promise.all([
        import('../audit/index.ts'),
        import('./mrv-service.ts'),
        import('./mrv-repo.ts'),
        import('./mrv-signer.ts'),
      ]);
    const signer = await loadOrCreateMrvSigner({
      dir: ctx.config.pki.dir,
      passphrase: ctx.ca.keyPassphrase,
    });
    return createMrvService({
      db: ctx.db,
      repo: createMrvRepo(),
      audit: createAuditLog({ db: ctx.db, signer: ctx.auditSigner }),
      signer,
    });
  };
  const writeOut = async (file: string | undefined, text: string): Promise<void> => {
    if (!file) {
      process.stdout.write(text);
      return;
    }
    const { writeFile, rename } = await import('node:fs/promises');
    await writeFile(`${file}.tmp`, text, { mode: 0o644 });
    await rename(`${file}.tmp`, file);
    process.stderr.write(`wrote ${file}\n`);
  };
  const reportIdOf = async (file: string) => {
    const { parseReportDocument } = await import('./mrv-report-fns.ts');
    try {
      return parseReportDocument(await readFile(file, 'utf8')).report.id;
    } catch (err) {
      throw new CliError(`${file}: ${(err as Error).message}`, 65);
    }
  };

  mrv
    .command('key')
    .description(
      'print the public key reports are signed with (also at /.well-known/thamani-mrv-key)',
    )
    .option('--json')
    .action(async (o: { json?: boolean }) => {
      const cfg = config();
      const [{ openMrvSigner }, { createLogger }] = await Promise.all([
        import('./mrv-signer.ts'),
        import('../app/logger.ts'),
      ]);
      const signer = await openMrvSigner(cfg.pki, createLogger({ ...cfg.log, level: 'error' }));
      output(
        o.json,
        { keyId: signer.keyId, publicKey: signer.publicKeyPem },
        () => `# MRV report signing key ${signer.keyId} (Ed25519)\n${signer.publicKeyPem}`,
      );
    });

  mrv
    .command('issue')
    .description(
      'issue the signed report of one digester, of every digester of a site, or (with --all or --units) of many digesters, for one month (UTC)',
    )
    .option('--unit <unit>', 'the digester: unit id or name')
    .option('--site <site>', 'the site (id or name): one report over all its digesters')
    .option('--all', "every digester's report for the month (batch)")
    .option('--units <list>', 'these digesters, comma-separated ids or names (batch)')
    .option('--concurrency <n>', 'batch: reports issued at once (default: min(DB_POOL_MAX - 1, 4))')
    .option('--out-dir <dir>', 'batch: write each report here as <report id>.json')
    .requiredOption('--month <YYYY-MM>', 'the calendar month, UTC')
    .option(
      '--supersede-reason <text>',
      'issue a correction: a new version superseding the latest, with this reason',
    )
    .option('--out <file>', 'write the report here (default: stdout)')
    .action(
      (o: {
        unit?: string;
        site?: string;
        month: string;
        supersedeReason?: string;
        out?: string;
        all?: boolean;
        units?: string;
        concurrency?: string;
        outDir?: string;
      }) =>
        withCli(config(), async (ctx) => {
          if (o.all || o.units !== undefined) {
            if (o.unit || o.site || o.supersedeReason || o.out)
              throw new CliError(
                'a batch (--all, --units) takes no --unit, --site, --supersede-reason or --out',
                64,
              );
            const { runIssueBatch } = await import('./mrv-batch-commands.ts');
            return runIssueBatch(ctx, await service(ctx), o);
          }
          if (Boolean(o.unit) === Boolean(o.site))
            throw new CliError('give one of --unit, --site, --units or --all', 64);
          const { monthPeriod } = await import('./mrv-service.ts');
          const mrvService = await service(ctx);
          const common = {
            ...monthPeriod(o.month),
            actor: ctx.actor,
            ...(o.supersedeReason ? { reason: o.supersedeReason } : {}),
          };
          const r = o.site
            ? await mrvService.issueSite({ site: o.site, ...common })
            : await mrvService.issue({ unit: o.unit!, ...common });
          await writeOut(o.out, r.document);
          if (o.out) process.stderr.write(`report ${r.id} version ${r.version}\n`);
        }),
    );

  mrv
    .command('verify <report>')
    .description(
      'check a report offline: its signature; with --readings, the Merkle root from a readings export; with --proof, an inclusion proof',
    )
    .option(
      '--public-key <file>',
      'the trusted MRV public key (PEM); without it, the key embedded in the report (integrity, not origin)',
    )
    .option('--readings <csv>', 'recompute the Merkle root from this export (`thamani mrv export`)')
    .option(
      '--leaf-hashes <file>',
      'with --readings: name the exact readings that differ, against these signed leaf hashes (`thamani mrv export --leaf-hashes`)',
    )
    .option('--proof <file>', 'check this inclusion proof (`thamani mrv prove`)')
    .option('--json')
    .action(
      async (
        report: string,
        o: {
          publicKey?: string;
          readings?: string;
          leafHashes?: string;
          proof?: string;
          json?: boolean;
        },
      ) => {
        const { verifyReportFiles, describeVerify } = await import('./mrv-verify-offline.ts');
        let result;
        try {
          result = await verifyReportFiles({ report, ...o });
        } catch (err) {
          throw new CliError(`cannot verify: ${(err as Error).message}`, 65);
        }
        const { text, exitCode } = describeVerify(result);
        if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        if (exitCode !== 0) throw new CliError(text.trimEnd(), exitCode);
        if (!o.json) process.stdout.write(text);
      },
    );

  mrv
    .command('prove <report>')
    .description('an RFC 6962 inclusion proof for one reading of a report')
    .requiredOption('--device <id>')
    .requiredOption('--ts <iso>', "the reading's timestamp (ISO 8601, UTC)")
    .option('--out <file>')
    .action(async (report: string, o: { device: string; ts: string; out?: string }) => {
      const id = await reportIdOf(report);
      return withCli(config(), async (ctx) =>
        writeOut(
          o.out,
          `${JSON.stringify(await (await service(ctx)).prove(id, o.device, o.ts), null, 2)}\n`,
        ),
      );
    });

  mrv
    .command('export <report>')
    .description(
      'the raw readings behind a report, as the CSV `mrv verify --readings` checks (audited as a download)',
    )
    .option('--out <file>')
    .option(
      '--leaf-hashes <file>',
      "also write the report's leaf hashes (32 bytes each), for `verify --leaf-hashes`",
    )
    .action(async (report: string, o: { out?: string; leafHashes?: string }) => {
      const id = await reportIdOf(report);
      return withCli(config(), async (ctx) => {
        if (o.leafHashes) {
          const hashes = createWriteStream(o.leafHashes);
          for await (const chunk of (await service(ctx)).exportLeafHashes(id, ctx.actor))
            if (!hashes.write(chunk)) await once(hashes, 'drain');
          await new Promise<void>((resolve, reject) =>
            hashes.end((err?: Error | null) => (err ? reject(err) : resolve())),
          );
        }
        const file = o.out ? createWriteStream(o.out, { mode: 0o644 }) : undefined;
        const out: NodeJS.WritableStream = file ?? process.stdout;
        for await (const line of (await service(ctx)).exportReadings(id, ctx.actor))
          if (!out.write(line)) await once(out, 'drain');
        if (file)
          await new Promise<void>((resolve, reject) =>
            file.end((err?: Error | null) => (err ? reject(err) : resolve())),
          );
      });
    });

  mrv
    .command('list')
    .description('issued reports, newest period first')
    .option('--unit <id>', "a digester's reports and the site reports that cover it")
    .option('--json')
    .action((o: { unit?: string; json?: boolean }) =>
      withCli(config(), async (ctx) => {
        const items = await (await service(ctx)).list(o.unit);
        output(
          o.json,
          { items },
          () =>
            items
              .map(
                (r) =>
                  `${r.id}  ${r.unitId ?? `site ${r.siteId}`}  ${r.periodStart.toISOString().slice(0, 7)}  v${r.version}${r.supersedes ? ` (supersedes ${r.supersedes}: ${r.reason})` : ''}  ${r.leafCount} readings  root ${r.merkleRoot.slice(0, 16)}…`,
              )
              .join('\n') || 'No report issued.',
        );
      }),
    );

  mrv
    .command('calibrate')
    .description("record a calibration of a device's sensor (append-only)")
    .requiredOption('--device <id>')
    .requiredOption('--metric <metric>', 'e.g. gas_flow_lpm, methane_pct')
    .requiredOption('--from <iso>', 'valid from')
    .option('--to <iso>', 'valid until (default: until further notice)')
    .requiredOption(
      '--result <pass|fail>',
      'pass, or fail (as-found out of tolerance: readings in the window are excluded)',
    )
    .requiredOption('--reference <text>', 'certificate or work order')
    .action(
      (o: {
        device: string;
        metric: string;
        from: string;
        to?: string;
        result: string;
        reference: string;
      }) =>
        withCli(config(), async (ctx) => {
          if (o.result !== 'pass' && o.result !== 'fail')
            throw new CliError('--result is pass or fail', 64);
          const date = (s: string, what: string) => {
            const d = new Date(s);
            if (Number.isNaN(d.getTime()))
              throw new CliError(`${what} ${JSON.stringify(s)} is not a date`, 64);
            return d;
          };
          const id = await (
            await service(ctx)
          ).addCalibration(
            {
              deviceId: o.device,
              metric: o.metric,
              validFrom: date(o.from, '--from'),
              validTo: o.to ? date(o.to, '--to') : null,
              result: o.result,
              reference: o.reference,
            },
            ctx.actor,
          );
          process.stdout.write(`calibration #${id} recorded\n`);
        }),
    );

  mrv
    .command('params')
    .description(
      'set a site\'s MRV parameters (JSON object of overrides, e.g. \'{"ambientPressureKpa":{"value":82,"source":"site survey"}}\')',
    )
    .requiredOption('--site <id>')
    .requiredOption('--set <json>')
    .action((o: { site: string; set: string }) =>
      withCli(config(), async (ctx) => {
        let overrides: unknown;
        try {
          overrides = JSON.parse(o.set);
        } catch {
          throw new CliError('--set is a JSON object', 64);
        }
        await (await service(ctx)).setSiteParams(o.site, overrides, ctx.actor);
        process.stdout.write('site parameters set\n');
      }),
    );

  registerVerifierCommands(mrv, config);
}
