import fs from 'node:fs/promises';
import type { Logger } from 'pino';
import { resolvePassphrase } from '../provisioning/ca-store.ts';
import { loadOrCreateAuditSigner, type AuditSigner } from './audit-signer.ts';

/**
 * The audit signer of a process that has the PKI directory but not the CA loaded (CLI commands):
 * the key is `<pki dir>/audit-signing.key`, encrypted with the PKI passphrase.
 */
export async function openAuditSigner(
  pki: { dir: string; passphrase: string | undefined },
  logger: Logger,
): Promise<AuditSigner> {
  await fs.mkdir(pki.dir, { recursive: true, mode: 0o700 });
  // The development passphrase warning belongs to `thamani start`; a command need not repeat it.
  const passphrase = await resolvePassphrase({
    dir: pki.dir,
    passphrase: pki.passphrase,
    logger: logger.child({}, { level: 'error' }),
  });
  return loadOrCreateAuditSigner({ dir: pki.dir, passphrase });
}
