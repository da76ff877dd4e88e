import os from 'node:os';
import type pg from 'pg';
import type { Db } from '../db/client.ts';
import type { DatabaseRuntime } from '../app/database.ts';
import type { Logger } from 'pino';
import type { AuditActor, AuditSigner } from '../audit/index.ts';
import type { Config } from '../config/index.ts';
import type { DeviceService } from '../devices/device-service.ts';
import type { LoadedCa, Pki } from '../provisioning/index.ts';

export interface CliContext {
  config: Config;
  db: Db;
  pool: pg.Pool;
  devices: DeviceService;
  pki: Pki;
  ca: LoadedCa;
  actor: AuditActor;
  /** Signs the audit entries this command writes (the key under the PKI directory). */
  auditSigner: AuditSigner;
}

/**
 * The database for one command: DATABASE_URL, or the embedded PostgreSQL (attached to a running
 * `thamani start`'s, else started for the command), migrated; stopped when fn returns. Logs at
 * warn unless LOG_LEVEL asks for more.
 */
export async function withDatabase<T>(
  config: Config,
  fn: (rt: DatabaseRuntime, logger: Logger) => Promise<T>,
): Promise<T> {
  // Loaded here, not at the top: `thamani --help` and argument errors need none of it.
  const [{ openDatabase }, { createLifecycle }, { createLogger }] = await Promise.all([
    import('../app/database.ts'),
    import('../app/lifecycle.ts'),
    import('../app/logger.ts'),
  ]);
  const logger = createLogger({
    ...config.log,
    level: config.log.level === 'info' ? 'warn' : config.log.level,
  });
  const lifecycle = createLifecycle(logger);
  try {
    return await fn(await openDatabase(config, logger, lifecycle), logger);
  } finally {
    await lifecycle.stop('command done');
  }
}

/**
 * What a technician's command needs: the database (attached to a running `thamani start`'s
 * embedded PostgreSQL, or DATABASE_URL), the CA and the services, acting as `cli:<os user>`.
 * Changes made here reach the running broker through pg_notify.
 */
export function withCli<T>(config: Config, fn: (ctx: CliContext) => Promise<T>): Promise<T> {
  return withDatabase(config, async (rt, logger) => {
    const [
      { createAuditLog, loadOrCreateAuditSigner },
      { createDeviceService },
      { createPki, loadOrCreateCa },
    ] = await Promise.all([
      import('../audit/index.ts'),
      import('../devices/device-service.ts'),
      import('../provisioning/index.ts'),
    ]);
    const host = config.publicHostname;
    // `thamani start` already warns about a development passphrase; a command need not repeat it.
    const ca = await loadOrCreateCa({
      dir: config.pki.dir,
      passphrase: config.pki.passphrase,
      serverNames: [...new Set([host, 'localhost', '127.0.0.1', '::1'])],
      serverCertDays: config.pki.serverCertDays,
      logger: logger.child({}, { level: 'error' }),
    });
    const auditSigner = await loadOrCreateAuditSigner({
      dir: config.pki.dir,
      passphrase: ca.keyPassphrase,
    });
    const audit = createAuditLog({ db: rt.database.db, signer: auditSigner });
    const pki = createPki({
      db: rt.database.db,
      ca,
      audit,
      config: config.pki,
      brokerUrl: `mqtts://${host}:${config.mqtt.port}`,
      crlUrl: `https://${host}:${config.https.port}/api/v1/pki/crl.der`,
    });
    const devices = createDeviceService({ db: rt.database.db, audit });
    return fn({
      config,
      db: rt.database.db,
      pool: rt.database.pool,
      devices,
      pki,
      ca,
      auditSigner,
      actor: { actorId: `cli:${os.userInfo().username}`, actorRole: 'admin' },
    });
  });
}

/** `--json`: exactly one JSON object on stdout; otherwise the human text. */
export function output(
  json: boolean | undefined,
  value: Record<string, unknown>,
  text: () => string,
): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${text().trimEnd()}\n`);
}
