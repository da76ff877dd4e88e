import type { Logger } from 'pino';
import type { DownstreamPublisher } from '../broker/types.ts';
import type { Config } from '../config/index.ts';
import type { Database } from '../db/index.ts';
import { API_LOGIN_ROLE } from './api-runtime.ts';
import { urlForRole } from './db-roles.ts';
import { createDatabase } from '../db/client.ts';
import { devSecret } from './dev-secrets.ts';
import type { Lifecycle } from './lifecycle.ts';
import { clusterRepo } from './cluster-repo.ts';

/**
 * What a `--role api` node hands to the components that would answer a device (a quarantine
 * replay's error reply): it has no broker and no session of that device, so there is nobody
 * to reach. The device gets its answer the next time it publishes through a gateway.
 */
export function noBrokerPublisher(logger: Logger): DownstreamPublisher {
  return {
    publish(deviceId, suffix) {
      logger.debug({ deviceId, suffix }, 'no broker on this node (--role api): message not sent');
      return Promise.resolve();
    },
  };
}

/**
 * The read pool for dashboards and exports (DATABASE_READ_URL, a streaming replica of the main
 * database): logged in as the API's role, like the API's own pool, so row-level security scopes
 * every read there as on the primary (a copy has the same roles, policies and grants).
 * Undefined without DATABASE_READ_URL: they read the API's pool. A hot standby is refused at
 * start (ADR 0011, "Not solved").
 */
export async function openReadDatabase(
  config: Config,
  logger: Logger,
  lifecycle: Lifecycle,
): Promise<Database | undefined> {
  if (!config.db.readUrl) return undefined;
  const password =
    config.auth.appDbPassword ?? (await devSecret(config.dataDir, 'app-db-password'));
  const database = createDatabase({
    url: urlForRole(config.db.readUrl, API_LOGIN_ROLE, password),
    poolMax: config.db.poolMax,
    logger: logger.child({ component: 'read-pool' }),
    applicationName: 'thamani-api-read',
  });
  lifecycle.onStop('api-read-pool', () => database.close());
  // The verified scope is a row each reading transaction writes (ADR 0009): a hot standby
  // refuses that write, so every page would fail there. Said at start, not per request.
  if (await clusterRepo.inRecovery(database.pool))
    throw new Error(
      'DATABASE_READ_URL points at a hot standby: scoped reads cannot open their scope there (docs/decisions/0011-cluster-coordination.md); point it at a server that accepts writes to thamani_scope, or unset it',
    );
  logger.info('dashboards and exports read from DATABASE_READ_URL');
  return database;
}
