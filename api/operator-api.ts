import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Db } from '../db/client.ts';
import type { DbExecutor } from '../db/scoped.ts';
import { createAuditLog, publicKeysOf, type AuditLog, type AuditSigner } from '../audit/index.ts';
import { auditRoutes } from '../audit/audit-routes.ts';
import { authRoutes } from '../auth/auth-routes.ts';
import { createAuthenticator } from '../auth/authenticator.ts';
import { pagesRoutes } from '../auth/pages-routes.ts';
import type { ScryptParams } from '../auth/password-fns.ts';
import type { Authenticator } from '../auth/principal.ts';
import { createSessionService, type SessionService } from '../auth/session-service.ts';
import { createHashGate, createLoginThrottle } from '../auth/throttle.ts';
import { userRoutes } from '../auth/user-routes.ts';
import { createUserService, trustedUserService, type UserService } from '../auth/user-service.ts';
import { scopedServices, type ScopedServices } from './scoped-services.ts';
import { buildApp, type ApiDeps, type RoutePlugin } from './app.ts';
import { createAuditGuard } from './audit-guard.ts';
import type { Metrics } from './metrics.ts';
import { installOriginGuard } from './origin-guard.ts';
import {
  createRefusalEvents,
  installRefusalEvents,
  type SecurityEventSink,
} from './refusal-events.ts';
import { registerApiPlatform, type ReadinessProbe } from './platform.ts';

export interface OperatorApiDeps {
  logger: Logger;
  /** A pool logged in as the API role (not owner, not superuser): RLS and audit grants apply. */
  db: Db;
  /**
   * The owner's pool: opens sessions after a password check (the database cannot run scrypt)
   * and serves `users` for the owner's own work (bootstrap admin). Never handed to routes.
   */
  ownerDb: Db;
  metrics: Metrics;
  probes: readonly ReadinessProbe[];
  cookieSecret: string;
  /** https://host:port, for setup/reset links. */
  publicBaseUrl: string;
  sessionIdleMs: number;
  sessionMaxMs: number;
  throttle?: { windowMs: number; maxFailuresPerAccount: number; maxFailuresPerIp: number };
  /** Concurrent password hashes and queued sign-ins (auth/throttle.ts createHashGate). */
  hashGate?: { maxConcurrent: number; maxQueue: number };
  now?: () => Date;
  passwordParams?: ScryptParams;
  /** API token lifetime: default and maximum, in days (config API_TOKEN_*_DAYS). */
  apiTokenDefaultDays?: number;
  apiTokenMaxDays?: number;
  https?: ApiDeps['https'];
  /**
   * Other features' routes (devices, provisioning, ingest, dashboards); `db` is the API role's
   * pool: run their SQL through scopedServices(db, …) (api/scoped-services.ts).
   */
  routes?: (ctx: {
    audit: AuditLog;
    db: Db;
    authenticator: Authenticator;
    /** The user service in the caller's scope (as /api/v1/users has it), for the admin's pages. */
    users: ScopedServices<UserService>;
  }) => RoutePlugin[];
  /** Origins besides publicBaseUrl whose pages may send state-changing requests (api/origin-guard.ts). */
  allowedOrigins?: string[];
  /** Where refused requests (401/403) go as security events; default: an aggregating sink into the audit log. */
  securityEvents?: SecurityEventSink;
  /** Replace the authenticator (tests of other features may keep the admin token). */
  authenticator?: Authenticator;
  version?: string;
  /** Signs every audit entry the API writes (audit/audit-signer.ts); the database never holds it. */
  auditSigner: AuditSigner;
  /** Signed checkpoints that /audit/verify checks the chain against (AUDIT_CHECKPOINT_DIR). */
  auditCheckpointDir?: string | undefined;
}

export interface OperatorApi {
  app: FastifyInstance;
  /** Successful state-changing requests that recorded no audit entry (api/audit-guard.ts). */
  auditMissing: ReturnType<typeof createAuditGuard>['missing'];
  audit: AuditLog;
  sessions: SessionService;
  /** For the owner's own work (bootstrap, tests' setup): trusted scope on the owner's pool. */
  users: UserService;
  hashGate: ReturnType<typeof createHashGate>;
  authenticator: Authenticator;
}

/** The operator API: platform, authentication, users, audit store, plus other features' routes. */
export async function createOperatorApi(deps: OperatorApiDeps): Promise<OperatorApi> {
  const now = deps.now ?? (() => new Date());
  const baseAudit = createAuditLog({ db: deps.db, signer: deps.auditSigner });
  const guard = createAuditGuard(baseAudit, deps.metrics.registry);
  const refusals =
    deps.securityEvents ??
    createRefusalEvents({
      audit: baseAudit,
      now: () => now().getTime(),
      onError: (err) => deps.logger.error({ err }, 'could not record a refused request'),
    });
  const audit = guard.audit;
  const throttleOpts = deps.throttle ?? {
    windowMs: 15 * 60_000,
    maxFailuresPerAccount: 5,
    maxFailuresPerIp: 50,
  };
  const throttle = createLoginThrottle({ ...throttleOpts, db: deps.db, now });
  // Two hashes at once leaves the other two libuv threads (default pool of 4) to DNS, files and
  // zlib; a queue of 64 absorbs a burst, beyond it sign-ins get 429 LOGIN_BUSY.
  const hashGate = createHashGate({ maxConcurrent: 2, maxQueue: 64, ...deps.hashGate });
  const sessions = createSessionService({
    db: deps.db,
    ownerDb: deps.ownerDb,
    audit,
    throttle,
    hashGate,
    securityEvents: refusals,
    now,
    idleMs: deps.sessionIdleMs,
    maxMs: deps.sessionMaxMs,
    passwordParams: deps.passwordParams,
  });
  const userDeps = {
    audit,
    now,
    publicBaseUrl: deps.publicBaseUrl,
    passwordParams: deps.passwordParams,
    apiTokenDefaultDays: deps.apiTokenDefaultDays,
    apiTokenMaxDays: deps.apiTokenMaxDays,
  };
  // Routes: admin work in the caller's verified scope; links (no user yet) on the API pool, where
  // the link's own secret opens the change.
  const scopedUsers = scopedServices(deps.db, (tx) => createUserService({ ...userDeps, db: tx }));
  const linkUsers = createUserService({ ...userDeps, db: deps.db });
  const users = trustedUserService(deps.ownerDb, userDeps);
  const authenticator =
    deps.authenticator ?? createAuthenticator({ sessions, cookieSecret: deps.cookieSecret });
  const sessionMaxSeconds = Math.floor(deps.sessionMaxMs / 1000);
  const app = await buildApp({
    logger: deps.logger,
    authenticator,
    https: deps.https,
    platform: async (a) => {
      await registerApiPlatform(a, {
        metrics: deps.metrics,
        probes: deps.probes,
        cookieSecret: deps.cookieSecret,
        version: deps.version ?? '0.1.0',
      });
      guard.install(a);
      installOriginGuard(a, {
        allowedOrigins: [deps.publicBaseUrl, ...(deps.allowedOrigins ?? [])],
      });
      installRefusalEvents(a, refusals);
    },
    routes: [
      { plugin: authRoutes({ sessions, users: linkUsers, scopedUsers, sessionMaxSeconds }) },
      { plugin: userRoutes({ users: scopedUsers }) },
      {
        plugin: auditRoutes({
          scoped: scopedServices(deps.db, (tx): DbExecutor => tx),
          publicKeys: publicKeysOf(deps.auditSigner),
          checkpointDir: deps.auditCheckpointDir,
        }),
      },
      { plugin: pagesRoutes({ sessions, users: linkUsers, sessionMaxSeconds }), root: true },
      ...(deps.routes?.({ audit, db: deps.db, authenticator, users: scopedUsers }) ?? []),
    ],
  });
  return { app, audit, sessions, users, authenticator, hashGate, auditMissing: guard.missing };
}
