import type { Db } from '../db/client.ts';
import type { User } from '../db/schema/index.ts';
import type { AuditActor, AuditLog } from '../audit/index.ts';
import { AuthErrors } from './auth-errors.ts';
import {
  hashPassword,
  needsRehash,
  newSecret,
  OWASP_SCRYPT,
  sha256,
  verifyPassword,
  type ScryptParams,
} from './password-fns.ts';
import type { HashGate, LoginThrottle } from './throttle.ts';
// layer: login refusals go to the operator API's refusal sink, aggregated with its other refusals
import type { SecurityEventSink } from '../api/refusal-events.ts';
import { covers, type Role } from './permissions.ts';
import { authRepo } from './auth-repo.ts';

export interface SessionDeps {
  db: Db;
  /**
   * The owner's pool, for the one write the API role may not make: opening a session (and
   * re-hashing a password at sign-in). The database cannot check a scrypt password, so who may
   * open a session is decided here; a stolen API-role password cannot (migration 0019).
   */
  ownerDb: Db;
  audit: Pick<AuditLog, 'record'>;
  throttle: LoginThrottle;
  /** Throttled attempts go here, aggregated (a flood must not become a flood of audit rows). */
  securityEvents?: SecurityEventSink;
  /** Bounds concurrent password hashing (auth/throttle.ts). */
  hashGate: HashGate;
  now: () => Date;
  idleMs: number;
  maxMs: number;
  passwordParams?: ScryptParams;
}

export interface ActiveSession {
  user: User;
  idHash: Buffer;
  csrfToken: string;
}

/** Sign-in, sessions (idle and absolute expiry) and API-token lookup. */
export function createSessionService(deps: SessionDeps) {
  const params = deps.passwordParams ?? OWASP_SCRYPT;
  // Unknown usernames cost one KDF run too, so timing does not tell which accounts exist.
  let dummyHash: Promise<string> | undefined;

  async function login(
    input: { username: string; password: string },
    actor: AuditActor,
  ): Promise<{ sessionId: string; csrfToken: string; user: User }> {
    const ip = actor.ip ?? 'unknown';
    // Reserve the attempt before anything else: parallel guesses cannot all pass a check that
    // the first ones have not yet counted (auth/throttle.ts).
    const verdict = await deps.throttle.reserve(input.username, ip);
    if (!verdict.allowed) {
      const event = {
        action: 'security.login_throttled',
        reason: 'LOGIN_THROTTLED',
        ip: actor.ip ?? undefined,
        target: 'POST login',
        targetType: 'https',
        details: { retryAfterSeconds: verdict.retryAfterSeconds },
      };
      if (deps.securityEvents) deps.securityEvents.record(event);
      else
        await deps.audit.record({
          ...actor,
          action: event.action,
          targetType: 'user',
          targetId: null,
          after: event.details,
        });
      throw Object.assign(new AuthErrors.LoginThrottled(verdict.retryAfterSeconds), {
        retryAfterSeconds: verdict.retryAfterSeconds,
      });
    }
    // No pool connection is held while hashing: the lookup's connection is back in the pool.
    const user = await authRepo.userByUsername(deps.db, input.username.toLowerCase());
    const stored =
      user?.passwordHash ?? (await (dummyHash ??= hashPassword('not a password', params)));
    const verified = await deps.hashGate.run(() => verifyPassword(input.password, stored));
    if (!verified) {
      await deps.throttle.release(input.username, ip);
      throw Object.assign(new AuthErrors.LoginBusy(), { retryAfterSeconds: 1 });
    }
    const ok = verified.value && user !== undefined && user.passwordHash !== null && !user.disabled;
    if (!ok || !user) {
      await deps.audit.record({
        ...actor,
        action: 'security.login_failed',
        targetType: 'user',
        targetId: user?.id ?? null,
      });
      throw new AuthErrors.InvalidCredentials();
    }
    await deps.throttle.succeed(input.username, ip);
    if (needsRehash(user.passwordHash!, params)) {
      const rehashed = await deps.hashGate.run(() => hashPassword(input.password, params));
      if (rehashed) await authRepo.setPasswordHash(deps.ownerDb, user.id, rehashed.value);
    }
    const sessionId = newSecret();
    const csrfToken = newSecret();
    const now = deps.now();
    await deps.ownerDb.transaction(async (tx) => {
      await authRepo.insertSession(tx, {
        idHash: sha256(sessionId),
        userId: user.id,
        csrfToken,
        ip: actor.ip ?? null,
        userAgent: actor.userAgent ?? null,
        createdAt: now,
        lastSeenAt: now,
        expiresAt: new Date(now.getTime() + deps.maxMs),
      });
      await deps.audit.record(
        {
          ...actor,
          actorId: user.id,
          actorRole: user.role,
          action: 'auth.login',
          targetType: 'user',
          targetId: user.id,
        },
        tx,
      );
    });
    return { sessionId, csrfToken, user };
  }

  /**
   * The live session behind a cookie value; undefined when expired. Touched (the idle timer
   * restarts) only when `renew`: a user action, never a background request.
   */
  async function bySessionId(
    sessionId: string,
    opts: { renew: boolean } = { renew: true },
  ): Promise<ActiveSession | undefined> {
    const idHash = sha256(sessionId);
    const now = deps.now();
    const row = await authRepo.liveSession(deps.db, idHash);
    if (!row || row.user.disabled) return undefined;
    const idleDeadline = row.session.lastSeenAt.getTime() + deps.idleMs;
    if (now.getTime() >= idleDeadline || now.getTime() >= row.session.expiresAt.getTime()) {
      await authRepo.revokeSession(deps.db, idHash, now);
      return undefined;
    }
    if (opts.renew) await authRepo.touchSession(deps.db, idHash, now);
    return { user: row.user, idHash, csrfToken: row.session.csrfToken };
  }

  async function logout(idHash: Buffer, actor: AuditActor): Promise<void> {
    await deps.db.transaction(async (tx) => {
      await authRepo.revokeSession(tx, idHash, deps.now());
      await deps.audit.record(
        { ...actor, action: 'auth.logout', targetType: 'user', targetId: actor.actorId },
        tx,
      );
    });
  }

  /**
   * The token behind a bearer secret, checked at every request in one statement: not revoked,
   * not expired, and its owner (if any) still active with a role that covers the token's. Marks
   * the token used. A disabled, erased or demoted owner's tokens fail at once, whatever else
   * happened (docs/security-model.md, "API tokens").
   */
  async function byApiToken(
    token: string,
  ): Promise<{ id: string; name: string; role: Role; ownerId: string | null } | undefined> {
    const now = deps.now();
    const row = await authRepo.useApiToken(deps.db, sha256(token), now);
    if (!row) return undefined;
    if (row.owner_role !== null && !covers(row.owner_role, row.role)) return undefined;
    return { id: row.id, name: row.name, role: row.role, ownerId: row.owner_id };
  }

  return { login, bySessionId, logout, byApiToken };
}

export type SessionService = ReturnType<typeof createSessionService>;
