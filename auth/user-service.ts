import { and, count, eq, gt, inArray, isNull } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { runScoped, type DbExecutor, type Scope } from '../db/scoped.ts';
import { alerts, apiTokens, sessions, units, userTokens, userUnitAssignments, users, type User } from '../db/schema/index.ts';
import type { AuditActor, AuditLog } from '../audit/index.ts';
import { covers, type Role } from './permissions.ts';
import { AuthErrors } from './auth-errors.ts';
import { hashPassword, newSecret, OWASP_SCRYPT, sha256, type ScryptParams } from './password-fns.ts';
import { contextWords, passwordProblem } from './password-policy.ts';
import { actorIdsOf, auditEntriesOfPerson, eraseSignInMetadata } from './personal-data-repo.ts';

export interface UserDeps {
  db: Db;
  audit: Pick<AuditLog, 'record'>;
  now: () => Date;
  /** https://host:port, for setup and reset links. */
  publicBaseUrl: string;
  setupTtlMs?: number;
  resetTtlMs?: number;
  passwordParams?: ScryptParams;
  /** API token lifetime when none is asked for, and the longest allowed (config API_TOKEN_*_DAYS). */
  apiTokenDefaultDays?: number;
  apiTokenMaxDays?: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What the API shows of a user. */
export function publicUser(u: User) {
  return { id: u.id, username: u.username, displayName: u.displayName, email: u.email, role: u.role, disabled: u.disabled, erased: u.erasedAt !== null, createdAt: u.createdAt.toISOString() };
}
export type PublicUser = ReturnType<typeof publicUser>;

/** What the audit log keeps of a user: no personal fields, so erasure leaves nothing to rewrite. */
function auditView(u: User) {
  return { id: u.id, role: u.role, disabled: u.disabled, erased: u.erasedAt !== null };
}

export function createUserService(deps: UserDeps) {
  const params = deps.passwordParams ?? OWASP_SCRYPT;
  const ttl = { setup: deps.setupTtlMs ?? 72 * 3_600_000, reset: deps.resetTtlMs ?? 3_600_000 };

  async function load(tx: DbExecutor, id: string): Promise<User> {
    const [u] = await tx.select().from(users).where(eq(users.id, id)).for('update');
    if (!u) throw new AuthErrors.UserNotFound();
    return u;
  }

  async function issueLink(tx: DbExecutor, userId: string, purpose: 'setup' | 'reset'): Promise<string> {
    const token = newSecret();
    // A new link voids the older unused ones of the same user.
    await tx.update(userTokens).set({ usedAt: deps.now() }).where(and(eq(userTokens.userId, userId), isNull(userTokens.usedAt)));
    await tx.insert(userTokens).values({ tokenHash: sha256(token), userId, purpose, createdAt: deps.now(), expiresAt: new Date(deps.now().getTime() + ttl[purpose]) });
    return `${deps.publicBaseUrl}/${purpose}?token=${token}`;
  }

  async function revokeSessions(tx: DbExecutor, userId: string): Promise<void> {
    await tx.update(sessions).set({ revokedAt: deps.now() }).where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt)));
  }

  /**
   * Revokes the user's API tokens (all, or those `role` no longer covers) in the caller's
   * transaction. The token lookup checks the owner at every request as well; revoking makes
   * the change visible in the token list and permanent if the user is re-enabled.
   */
  async function revokeOwnedTokens(tx: DbExecutor, userId: string, keepCoveredBy?: Role): Promise<string[]> {
    const owned = await tx.select({ id: apiTokens.id, role: apiTokens.role }).from(apiTokens).where(and(eq(apiTokens.ownerId, userId), isNull(apiTokens.revokedAt)));
    const doomed = owned.filter((t) => keepCoveredBy === undefined || !covers(keepCoveredBy, t.role)).map((t) => t.id);
    if (doomed.length > 0) await tx.update(apiTokens).set({ revokedAt: deps.now() }).where(inArray(apiTokens.id, doomed));
    return doomed;
  }

  /** The user a new token acts for: the signed-in user, or the owner of the token making it; null for the CLI/system. */
  async function ownerOf(tx: DbExecutor, actorId: string): Promise<User | null> {
    let userId: string | null = null;
    if (UUID.test(actorId)) userId = actorId;
    else if (actorId.startsWith('token:')) {
      const [parent] = await tx.select({ ownerId: apiTokens.ownerId }).from(apiTokens).where(eq(apiTokens.id, actorId.slice('token:'.length)));
      userId = parent?.ownerId ?? null;
    }
    if (userId === null) return null;
    const [u] = await tx.select().from(users).where(eq(users.id, userId));
    return u ?? null;
  }

  return {
    async list(): Promise<PublicUser[]> {
      return (await deps.db.select().from(users).orderBy(users.username)).map(publicUser);
    },

    async create(input: { username: string; displayName: string; email?: string | null | undefined; role: Role }, actor: AuditActor) {
      return runScoped(deps.db, { actorId: actor.actorId, role: actor.actorRole }, async (tx) => {
        const username = input.username.toLowerCase();
        const [taken] = await tx.select({ id: users.id }).from(users).where(eq(users.username, username));
        if (taken) throw new AuthErrors.UsernameTaken(username);
        const [user] = await tx.insert(users).values({ username, displayName: input.displayName, email: input.email ?? null, role: input.role }).returning();
        const setupLink = await issueLink(tx, user!.id, 'setup');
        await deps.audit.record({ ...actor, action: 'user.create', targetType: 'user', targetId: user!.id, before: null, after: auditView(user!) }, tx);
        return { user: publicUser(user!), setupLink };
      });
    },

    async update(id: string, patch: { role?: Role | undefined; disabled?: boolean | undefined; displayName?: string | undefined; email?: string | null | undefined }, actor: AuditActor) {
      return runScoped(deps.db, { actorId: actor.actorId, role: actor.actorRole }, async (tx) => {
        const before = await load(tx, id);
        const [after] = await tx.update(users).set({ ...patch, updatedAt: deps.now() }).where(eq(users.id, id)).returning();
        // A role change or disabling ends the user's sessions (permissions are re-read at next
        // sign-in) and the API tokens the user no longer may hold: all when disabled.
        const roleChanged = patch.role !== undefined && patch.role !== before.role;
        if (patch.disabled === true || roleChanged) await revokeSessions(tx, id);
        const revokedTokens = patch.disabled === true ? await revokeOwnedTokens(tx, id) : roleChanged ? await revokeOwnedTokens(tx, id, after!.role) : [];
        await deps.audit.record(
          { ...actor, action: patch.disabled === true ? 'user.disable' : 'user.update', targetType: 'user', targetId: id, before: auditView(before), after: { ...auditView(after!), revokedTokens } },
          tx,
        );
        return publicUser(after!);
      });
    },

    async resetLink(id: string, actor: AuditActor): Promise<string> {
      return runScoped(deps.db, { actorId: actor.actorId, role: actor.actorRole }, async (tx) => {
        const u = await load(tx, id);
        const link = await issueLink(tx, id, u.passwordHash === null ? 'setup' : 'reset');
        await deps.audit.record({ ...actor, action: 'user.reset_link', targetType: 'user', targetId: id }, tx);
        return link;
      });
    },

    /** Uses a setup or reset link once: sets the password, ends every session of that user. */
    async completeLink(token: string, password: string, actor: AuditActor): Promise<PublicUser> {
      // The link's user, read without using the link up: their own name and e-mail may not be in the password.
      const [holder] = await deps.db
        .select({ username: users.username, displayName: users.displayName, email: users.email })
        .from(userTokens)
        .innerJoin(users, eq(users.id, userTokens.userId))
        .where(and(eq(userTokens.tokenHash, sha256(token)), isNull(userTokens.usedAt), gt(userTokens.expiresAt, deps.now())));
      if (!holder) throw new AuthErrors.LinkInvalid();
      const problem = await passwordProblem(password, contextWords(holder));
      if (problem) throw new AuthErrors.WeakPassword(problem);
      const passwordHash = await hashPassword(password, params);
      return runScoped(deps.db, { actorId: actor.actorId, role: actor.actorRole }, async (tx) => {
        const now = deps.now();
        const [used] = await tx
          .update(userTokens)
          .set({ usedAt: now })
          .where(and(eq(userTokens.tokenHash, sha256(token)), isNull(userTokens.usedAt), gt(userTokens.expiresAt, now)))
          .returning();
        if (!used) throw new AuthErrors.LinkInvalid();
        const before = await load(tx, used.userId);
        if (before.disabled || before.erasedAt) throw new AuthErrors.LinkInvalid();
        const [after] = await tx.update(users).set({ passwordHash, passwordChangedAt: now, updatedAt: now }).where(eq(users.id, used.userId)).returning();
        await revokeSessions(tx, used.userId);
        await deps.audit.record({ ...actor, actorId: before.id, actorRole: before.role, action: `user.password_${used.purpose}`, targetType: 'user', targetId: before.id }, tx);
        return publicUser(after!);
      });
    },

    async assignUnits(id: string, unitIds: string[], actor: AuditActor): Promise<string[]> {
      return runScoped(deps.db, { actorId: actor.actorId, role: actor.actorRole }, async (tx) => {
        await load(tx, id);
        const before = (await tx.select({ unitId: userUnitAssignments.unitId }).from(userUnitAssignments).where(eq(userUnitAssignments.userId, id))).map((r) => r.unitId).sort();
        if (unitIds.length > 0) {
          const [found] = await tx.select({ n: count() }).from(units).where(inArray(units.id, unitIds));
          if ((found?.n ?? 0) !== new Set(unitIds).size) throw new AuthErrors.UnknownUnits();
        }
        await tx.delete(userUnitAssignments).where(eq(userUnitAssignments.userId, id));
        if (unitIds.length > 0) await tx.insert(userUnitAssignments).values([...new Set(unitIds)].map((unitId) => ({ userId: id, unitId })));
        const after = [...new Set(unitIds)].sort();
        await deps.audit.record({ ...actor, action: 'user.assign_units', targetType: 'user', targetId: id, before: { unitIds: before }, after: { unitIds: after } }, tx);
        return after;
      });
    },

    /**
     * Data portability: everything we hold about the user, as JSON: the account, sessions with
     * their IPs and user agents, the audit entries they made and those about them (with the
     * request metadata still kept), and the alerts they acknowledged.
     */
    async exportAccount(id: string, scope: Scope) {
      // Scoped: the alerts acknowledged are read through row-level security like any other read.
      return runScoped(deps.db, scope, async (tx) => {
        const [u] = await tx.select().from(users).where(eq(users.id, id));
        if (!u) throw new AuthErrors.UserNotFound();
        const assigned = await tx.select({ unitId: userUnitAssignments.unitId }).from(userUnitAssignments).where(eq(userUnitAssignments.userId, id));
        const userSessions = await tx
          .select({ createdAt: sessions.createdAt, lastSeenAt: sessions.lastSeenAt, ip: sessions.ip, userAgent: sessions.userAgent, revokedAt: sessions.revokedAt })
          .from(sessions)
          .where(eq(sessions.userId, id));
        const entries = await auditEntriesOfPerson(tx, id);
        const actorIds = new Set(await actorIdsOf(tx, id));
        const acknowledged = await tx
          .select({ id: alerts.id, ruleId: alerts.ruleId, deviceId: alerts.deviceId, acknowledgedAt: alerts.acknowledgedAt, note: alerts.ackNote })
          .from(alerts)
          .where(inArray(alerts.acknowledgedById, [...actorIds]));
        return {
          exportedAt: deps.now().toISOString(),
          user: { ...publicUser(u), number: u.number, passwordChangedAt: u.passwordChangedAt?.toISOString() ?? null },
          assignedUnits: assigned.map((a) => a.unitId),
          sessions: userSessions,
          auditEntriesAsActor: entries.filter((e) => actorIds.has(e.actorId)),
          // What others did to them: where those others were is the others' data, not theirs.
          auditEntriesAboutUser: entries
            .filter((e) => e.targetType === 'user' && e.targetId === id)
            .map((e) => (actorIds.has(e.actorId) || e.actorId === 'anonymous' ? e : { ...e, ip: null, userAgent: null })),
          alertsAcknowledged: acknowledged.map((a) => ({ ...a, acknowledgedAt: a.acknowledgedAt?.toISOString() ?? null })),
        };
      });
    },

    /**
     * Right to erasure: personal fields replaced, sign-in metadata removed (auth/personal-data.ts),
     * id and number kept: immutable records refer to the person by id, and displays now call them
     * "erased user #<number>" (actor_display_name(), migration 0017).
     */
    async erase(id: string, actor: AuditActor): Promise<PublicUser> {
      return runScoped(deps.db, { actorId: actor.actorId, role: actor.actorRole }, async (tx) => {
        const before = await load(tx, id);
        const now = deps.now();
        const [after] = await tx
          .update(users)
          .set({ username: `erased-${id}`, displayName: `erased user #${before.number}`, email: null, passwordHash: null, disabled: true, erasedAt: now, updatedAt: now })
          .where(eq(users.id, id))
          .returning();
        const revokedTokens = await revokeOwnedTokens(tx, id);
        await eraseSignInMetadata(tx, before);
        await tx.update(userTokens).set({ usedAt: now }).where(and(eq(userTokens.userId, id), isNull(userTokens.usedAt)));
        await deps.audit.record({ ...actor, action: 'user.erase', targetType: 'user', targetId: id, before: auditView(before), after: { ...auditView(after!), revokedTokens } }, tx);
        return publicUser(after!);
      });
    },

    /**
     * A token acts for its owner (the caller; null when the CLI or system makes it) and never
     * for more than the owner has: its role must be covered by the owner's, now and at every use.
     */
    async createApiToken(input: { name: string; role: Role; expiresInDays?: number | undefined }, actor: AuditActor) {
      const maxDays = deps.apiTokenMaxDays ?? 365;
      const days = input.expiresInDays ?? Math.min(deps.apiTokenDefaultDays ?? 90, maxDays);
      if (days > maxDays) throw new AuthErrors.TokenLifetimeTooLong(maxDays);
      const token = newSecret('thm_');
      return runScoped(deps.db, { actorId: actor.actorId, role: actor.actorRole }, async (tx) => {
        const owner = await ownerOf(tx, actor.actorId);
        if (owner && (owner.disabled || owner.erasedAt || !covers(owner.role, input.role))) throw new AuthErrors.TokenRoleTooWide(`${owner.role} cannot hand out ${input.role}`);
        // The principal making it (a token acts with its own role, maybe narrower than its owner's).
        if (actor.actorRole !== 'system' && !covers(actor.actorRole as Role, input.role)) throw new AuthErrors.TokenRoleTooWide(`${actor.actorRole} cannot hand out ${input.role}`);
        const expiresAt = new Date(deps.now().getTime() + days * 86_400_000);
        const [row] = await tx.insert(apiTokens).values({ name: input.name, role: input.role, tokenHash: sha256(token), createdBy: actor.actorId, ownerId: owner?.id ?? null, expiresAt }).returning();
        const view = { id: row!.id, name: row!.name, role: row!.role, ownerId: row!.ownerId, expiresAt: row!.expiresAt.toISOString() };
        await deps.audit.record({ ...actor, action: 'api_token.create', targetType: 'api_token', targetId: row!.id, before: null, after: view }, tx);
        return { ...view, token };
      });
    },

    /** Every token with its owner, expiry and last use (what an admin reviews). */
    async listApiTokens() {
      const rows = await deps.db.select().from(apiTokens).orderBy(apiTokens.createdAt);
      const now = deps.now().getTime();
      return rows.map((r) => ({
        id: r.id,
        name: r.name,
        role: r.role,
        createdBy: r.createdBy,
        ownerId: r.ownerId,
        createdAt: r.createdAt.toISOString(),
        expiresAt: r.expiresAt.toISOString(),
        lastUsedAt: r.lastUsedAt?.toISOString() ?? null,
        revoked: r.revokedAt !== null,
        expired: r.expiresAt.getTime() <= now,
      }));
    },

    async revokeApiToken(id: string, actor: AuditActor): Promise<void> {
      await runScoped(deps.db, { actorId: actor.actorId, role: actor.actorRole }, async (tx) => {
        const [row] = await tx.update(apiTokens).set({ revokedAt: deps.now() }).where(and(eq(apiTokens.id, id), isNull(apiTokens.revokedAt))).returning();
        if (!row) throw new AuthErrors.TokenNotFound();
        await deps.audit.record({ ...actor, action: 'api_token.revoke', targetType: 'api_token', targetId: id, before: { revoked: false }, after: { revoked: true } }, tx);
      });
    },

    /** First start: no user yet, so make `admin` and hand back its one-time setup link. */
    async ensureBootstrapAdmin(): Promise<string | undefined> {
      const [n] = await deps.db.select({ n: count() }).from(users);
      if ((n?.n ?? 0) > 0) return undefined;
      const { setupLink } = await this.create({ username: 'admin', displayName: 'Administrator', role: 'admin' }, { actorId: 'system', actorRole: 'system', ip: null, userAgent: null, requestId: null });
      return setupLink;
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;
