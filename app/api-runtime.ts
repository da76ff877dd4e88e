import { readFile } from 'node:fs/promises';
import type { Config } from '../config/index.ts';
import { selfSignedCertificate } from '../api/dev-cert.ts';
import { createMetricsRegistry, type Metrics } from '../api/metrics.ts';
import { createOperatorApi, type OperatorApi, type OperatorApiDeps } from '../api/operator-api.ts';
import type { ReadinessProbe } from '../api/platform.ts';
import { createHttpsRedirectServer } from '../api/redirect-server.ts';
import { publicBaseUrl } from '../api/public-url.ts';
import {
  createAuditCheckpointer,
  createAuditLog,
  startAuditCheckpoints,
  type AuditSigner,
} from '../audit/index.ts';
import { startAuditRetention } from '../audit/audit-retention.ts';
import { startSignInMetadataRetention } from '../auth/personal-data-retention.ts';
import type { DatabaseRuntime } from './database.ts';
import { openAsLoginRole } from './db-roles.ts';
import { databaseAnswers } from '../db/health.ts';
import { devSecret } from './dev-secrets.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { Logger } from 'pino';

export const API_LOGIN_ROLE = 'thamani_api';

async function tlsMaterial(
  config: Config,
  logger: Logger,
  given?: { cert: string; key: string },
): Promise<{ cert: string; key: string }> {
  if (config.https.certFile && config.https.keyFile) {
    return {
      cert: await readFile(config.https.certFile, 'utf8'),
      key: await readFile(config.https.keyFile, 'utf8'),
    };
  }
  if (given) return given;
  if (config.env === 'production')
    throw new Error(
      'HTTPS_CERT_FILE/HTTPS_KEY_FILE (or the PKI server certificate) are required in production',
    );
  logger.warn('no server certificate configured: using a self-signed development certificate');
  return selfSignedCertificate(config.publicHostname, 30);
}

export interface ApiRuntimeExtras {
  metrics?: Metrics;
  probes?: ReadinessProbe[];
  routes?: OperatorApiDeps['routes'];
  /** Server certificate from our PKI (provisioning/); HTTPS_CERT_FILE/KEY_FILE take precedence. */
  tls?: { cert: string; key: string };
}

export interface ApiRuntimeAudit {
  /** The audit signing key (kept under the PKI directory, like the CA keys). */
  auditSigner: AuditSigner;
}

/**
 * The operator API at run time: the database LOGIN role it connects as, its pool, HTTPS on
 * HTTPS_PORT, the 301 listener on HTTP_REDIRECT_PORT, and on first start the `admin` user with
 * a one-time setup link in the log.
 */
export async function startOperatorApi(
  config: Config,
  rt: DatabaseRuntime,
  ctx: { logger: Logger; lifecycle: Lifecycle },
  extras: ApiRuntimeExtras & ApiRuntimeAudit,
): Promise<OperatorApi & { metrics: Metrics }> {
  const logger = ctx.logger.child({ component: 'api' });
  const appDbPassword =
    config.auth.appDbPassword ?? (await devSecret(config.dataDir, 'app-db-password'));
  const cookieSecret =
    config.auth.sessionSecret ?? (await devSecret(config.dataDir, 'session-secret'));
  const apiDb = await openAsLoginRole(
    { client: rt.database.pool, url: rt.url },
    {
      kind: 'api',
      loginRole: API_LOGIN_ROLE,
      password: appDbPassword,
      poolMax: config.db.poolMax,
      logger,
      applicationName: 'thamani-api',
    },
  );
  ctx.lifecycle.onStop('api-database-pool', () => apiDb.close());

  const metrics = extras.metrics ?? createMetricsRegistry();
  const api = await createOperatorApi({
    logger,
    db: apiDb.db,
    ownerDb: rt.database.db,
    metrics,
    probes: [
      { name: 'database', check: () => databaseAnswers(apiDb.pool) },
      ...(extras.probes ?? []),
    ],
    cookieSecret,
    publicBaseUrl: publicBaseUrl(config),
    sessionIdleMs: config.auth.sessionIdleMinutes * 60_000,
    sessionMaxMs: config.auth.sessionMaxHours * 3_600_000,
    apiTokenDefaultDays: config.auth.apiTokenDefaultDays,
    apiTokenMaxDays: config.auth.apiTokenMaxDays,
    https: await tlsMaterial(config, logger, extras.tls),
    routes: extras.routes,
    auditSigner: extras.auditSigner,
    auditCheckpointDir: config.audit.checkpointDir,
  });
  await api.app.listen({ host: config.https.host, port: config.https.port });
  ctx.lifecycle.onStop('https', () => api.app.close());

  const redirect = createHttpsRedirectServer({
    publicHostname: config.publicHostname,
    httpsPort: config.https.port,
  });
  await new Promise<void>((resolve, reject) => {
    redirect.once('error', reject);
    redirect.listen(config.https.redirectPort, config.https.host, () => resolve());
  });
  ctx.lifecycle.onStop('http-redirect', () => new Promise<void>((r) => redirect.close(() => r())));
  logger.info(
    { https: `${publicBaseUrl(config)}`, redirectPort: config.https.redirectPort },
    'operator API listening (OpenAPI UI at /docs)',
  );

  // These run as the owner: retention needs it (migration 0015), and a checkpoint must see every entry.
  const ownerAudit = createAuditLog({ db: rt.database.db, signer: extras.auditSigner });
  ctx.lifecycle.onStop(
    'audit-retention',
    startAuditRetention({
      ownerDb: rt.database.db,
      audit: ownerAudit,
      logger: logger.child({ component: 'audit-retention' }),
    }),
  );
  ctx.lifecycle.onStop(
    'signin-metadata-retention',
    startSignInMetadataRetention({
      db: rt.database.db,
      retentionDays: config.auth.signInMetadataRetentionDays,
      logger: logger.child({ component: 'signin-metadata-retention' }),
    }),
  );
  const { webhookUrl, webhookSecret } = config.alerts;
  const checkpointer = createAuditCheckpointer({
    db: rt.database.db,
    signer: extras.auditSigner,
    dir: config.audit.checkpointDir,
    webhook: webhookUrl && webhookSecret ? { url: webhookUrl, secret: webhookSecret } : undefined,
  });
  ctx.lifecycle.onStop(
    'audit-checkpoints',
    startAuditCheckpoints({
      checkpointer,
      intervalMs: config.audit.checkpointIntervalMs,
      logger: logger.child({ component: 'audit-checkpoints' }),
    }),
  );

  const setupLink = await api.users.ensureBootstrapAdmin();
  // The one time this link exists: printed, never stored (only its hash is).
  if (setupLink)
    logger.warn(
      { setupLink },
      'first start: created user "admin"; open this single-use link within 72 h to choose its password',
    );
  return { ...api, metrics };
}
