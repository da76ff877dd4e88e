import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Config } from '../config/index.ts';
import { CliError } from '../cli/errors.ts';
import { output, withCli } from '../cli/context.ts';
import { revocationReasons } from './pki-errors.ts';
import type { IssuedCertificate } from './pki-service.ts';

function readFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(
      `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}

/** `thamani cert …` and `thamani pki …`. */
export function registerPkiCommands(program: Command, config: () => Config): void {
  const cert = program.command('cert').description('device certificates');
  cert
    .command('issue <deviceId>')
    .option('--csr <file>', 'sign this PEM CSR (CN must be the device id)')
    .option(
      '--pkcs12-password <password>',
      'no CSR: make a key pair here and return it once, also as PKCS#12',
    )
    .option(
      '--out <prefix>',
      'write <prefix>.crt, <prefix>-chain.pem (and .key/.p12) instead of printing',
    )
    .option('--json')
    .description('issue a certificate to a device')
    .action(
      (
        deviceId: string,
        o: { csr?: string; pkcs12Password?: string; out?: string; json?: boolean },
      ) =>
        withCli(config(), async ({ pki, actor }) => {
          if (!o.csr === !o.pkcs12Password)
            throw new CliError('give exactly one of --csr <file> or --pkcs12-password <password>');
          const issued: IssuedCertificate & { privateKey?: string; pkcs12?: string } = o.csr
            ? await pki.issueFromCsr(deviceId, readFile(o.csr, 'CSR'), actor)
            : await pki.issueKeyPair(deviceId, o.pkcs12Password!, actor);
          if (o.out) {
            writeFileSync(`${o.out}.crt`, issued.certificate);
            writeFileSync(`${o.out}-chain.pem`, issued.chain);
            if (issued.privateKey && issued.pkcs12) {
              writeFileSync(`${o.out}.key`, issued.privateKey, { mode: 0o600 });
              writeFileSync(`${o.out}.p12`, Buffer.from(issued.pkcs12, 'base64'), { mode: 0o600 });
            }
          }
          output(
            o.json,
            o.out
              ? { ...issued, privateKey: undefined, pkcs12: undefined, files: o.out }
              : { ...issued },
            () =>
              `Issued ${issued.serial} to ${deviceId}, valid until ${issued.notAfter}.` +
              (o.out
                ? `\nWritten: ${o.out}.crt, ${o.out}-chain.pem${'privateKey' in issued ? `, ${o.out}.key, ${o.out}.p12 (keep them secret; they are not stored)` : ''}`
                : `\n\n${issued.certificate}`) +
              `\nBroker: ${issued.brokerUrl}`,
          );
        }),
    );
  cert
    .command('list')
    .option('--device <id>')
    .option('--expiring <days>', 'only active certificates expiring within N days', (v) =>
      Number.parseInt(v, 10),
    )
    .option('--json')
    .action((o: { device?: string; expiring?: number; json?: boolean }) =>
      withCli(config(), async ({ pki }) => {
        const certs = await pki.listCertificates({
          ...(o.device ? { deviceId: o.device } : {}),
          ...(o.expiring !== undefined ? { expiringWithinDays: o.expiring } : {}),
        });
        output(
          o.json,
          { certificates: certs },
          () =>
            certs
              .map(
                (c) =>
                  `${c.serial}  ${c.deviceId.padEnd(20)} ${c.status.padEnd(8)} ${c.notBefore.toISOString().slice(0, 10)} → ${c.notAfter.toISOString().slice(0, 10)}  sha256 ${c.fingerprintSha256.slice(0, 16)}…`,
              )
              .join('\n') || 'No certificates.',
        );
      }),
    );
  cert
    .command('revoke <serial>')
    .option('--reason <reason>', Object.keys(revocationReasons).join(' | '), 'unspecified')
    .option('--json')
    .description('revoke at once: live sessions are cut, the CRL is re-issued')
    .action((serial: string, o: { reason: string; json?: boolean }) =>
      withCli(config(), async ({ pki, actor }) => {
        const r = await pki.revoke(serial, o.reason, actor);
        output(
          o.json,
          {
            serial: r.certificate.serial,
            deviceId: r.certificate.deviceId,
            status: r.certificate.status,
            reason: o.reason,
            crlNumber: r.crlNumber,
          },
          () =>
            `Revoked ${r.certificate.serial} (${r.certificate.deviceId}, ${o.reason}); CRL #${r.crlNumber} published.`,
        );
      }),
    );
  cert
    .command('rotate <deviceId>')
    .option('--json')
    .description(
      'ask the device to renew now (it may renew outside its window; the old certificate is revoked after the overlap)',
    )
    .action((deviceId: string, o: { json?: boolean }) =>
      withCli(config(), async ({ pki, actor, config: cfg }) => {
        await pki.requestRotation(deviceId, actor);
        output(
          o.json,
          { deviceId, rotationRequested: true },
          () =>
            `Rotation requested for ${deviceId}: it may now publish a CSR on devices/${deviceId}/cert/csr. The old certificate is revoked ${cfg.pki.rotationOverlapHours} h after the new one is issued.`,
        );
      }),
    );

  const pkiCmd = program.command('pki').description('the certificate authority');
  pkiCmd
    .command('export-ca')
    .option('--out <file>', 'write the root CA certificate here')
    .option('--chain', 'the issuing CA and the root (what devices need)')
    .option('--json')
    .action((o: { out?: string; chain?: boolean; json?: boolean }) =>
      withCli(config(), ({ ca }) => {
        const pem = o.chain ? ca.chainPem : ca.rootCertPem;
        if (o.out) writeFileSync(o.out, pem);
        output(o.json, { pem, ...(o.out ? { file: o.out } : {}) }, () =>
          o.out ? `Wrote ${o.chain ? 'the chain' : 'the root CA certificate'} to ${o.out}.` : pem,
        );
        return Promise.resolve();
      }),
    );
  pkiCmd
    .command('import')
    .requiredOption('--root-cert <file>')
    .requiredOption('--issuing-cert <file>')
    .requiredOption('--issuing-key <file>')
    .option('--root-crl <file>', "the root's CRL (needed for CRL checks in TLS)")
    .option('--key-passphrase-file <file>')
    .description(
      'use an existing CA (production): before the first start, into an empty PKI directory',
    )
    .action(
      async (o: {
        rootCert: string;
        issuingCert: string;
        issuingKey: string;
        rootCrl?: string;
        keyPassphraseFile?: string;
      }) => {
        const cfg = config();
        const [{ importCa }, { createLogger }] = await Promise.all([
          import('./ca-store.ts'),
          import('../app/logger.ts'),
        ]);
        await importCa({
          dir: cfg.pki.dir,
          passphrase: cfg.pki.passphrase,
          serverNames: [cfg.publicHostname],
          serverCertDays: cfg.pki.serverCertDays,
          logger: createLogger(cfg.log),
          rootCertPem: readFile(o.rootCert, 'root certificate'),
          issuingCertPem: readFile(o.issuingCert, 'issuing certificate'),
          issuingKeyPem: readFile(o.issuingKey, 'issuing key'),
          ...(o.rootCrl ? { rootCrlPem: readFile(o.rootCrl, 'root CRL') } : {}),
          ...(o.keyPassphraseFile
            ? { keyPassphrase: readFile(o.keyPassphraseFile, 'key passphrase').trim() }
            : {}),
        });
        process.stdout.write(
          `CA imported into ${cfg.pki.dir}. The server certificate is issued at the next start.\n`,
        );
      },
    );
}
