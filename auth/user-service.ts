import type { Lang } from '../i18n/index.ts';
import type { Db } from '../db/client.ts';
import { runScoped, trustedScope, type DbExecutor } from '../db/scoped.ts';
import type { User } from '../db/schema/index.ts';
import type { AuditActor, AuditLog } from '../audit/index.ts';
import { covers, type Role } from './permissions.ts';
import { AuthErrors } from './auth-errors.ts';
import {
  hashPassword,
  newSecret,
  OWASP_SCRYPT,
  sha256,
  type ScryptParams,
} from './password-fns.ts';
import { contextWords, passwordProblem } from './password-policy.ts';
import {
  actorIdsOf,
  auditEntriesOfPerson,
  eraseSignInMetadata,
  personalRecords,
} from './personal-data-repo.ts';
import { authRepo } from './auth-repo.ts';

export interface UserDeps {
  /**
   * The scoped transaction the methods run in (api/scoped-services.ts for routes;
   * trustedUserService below for the CLI and bootstrap). Changes go through the definer
   * functions of migration 0019, which check the transaction's verified scope.
   */
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

/** Ids for a definer function's uuid[] argument (auth-repo.ts); ids are checked, so nothing else gets in. */
function uuids(ids: string[]): string[] {
  for (const id of ids) if (!UUID.test(id)) throw new AuthErrors.UnknownUnits();
  return ids;
}

/** What the API shows of a user. */
export function publicUser(u: User) {
  return {
    id: u.id,
    username: u.username,
    displayName: u.displayName,
    email: u.email,
    role: u.role,
    language: u.language,
    disabled: u.disabled,
    erased: u.erasedAt !== null,
    createdAt: u.createdAt.toISOString(),
  };
}
export type PublicUser = ReturnType<typeof publicUser>;

/** What the audit log keeps of a user: no personal fields, so erasure leaves nothing to rewrite. */
function auditView(u: User) {
  return { id: u.id, role: u.role, disabled: u.disabled, erased: u.erasedAt !== null };
}

export function createUserService(deps: UserDeps) {
  const params = deps.passwordParams ?? OWASP_SCRYPT;
  const ttl = { setup: deps.setupTtlMs ?? 72 * 3_600_000, reset: deps.resetTtlMs ?? 3_600_000 };

  /** The user, locked for the transaction when it is about to change (`before` is then exact). */
  async function load(tx: DbExecutor, id: string, opts: { lock?: boolean } = {}): Promise<User> {
    if (opts.lock) await authRepo.lockUser(tx, id);
    const u = await authRepo.userById(tx, id);
    if (!u) throw new AuthErrors.UserNotFound();
    return u;
  }

  async function issueLink(
    tx: DbExecutor,
    userId: string,
    purpose: 'setup' | 'reset',
  ): Promise<string> {
    const token = newSecret();
    // A new link voids the older unused ones of the same user.
    await authRepo.issueUserLink(
      tx,
      userId,
      purpose,
      sha256(token),
      new Date(deps.now().getTime() + ttl[purpose]),
    );
    return `${deps.publicBaseUrl}/${purpose}?token=${token}`;
  }

  async function revokeSessions(tx: DbExecutor, userId: string): Promise<void> {
    await authRepo.revokeUserSessions(tx, userId, deps.now());
  }

  /**
   * Revokes the user's API tokens (all, or those `role` no longer covers) in the caller's
   * transaction. The token lookup checks the owner at every request as well; revoking makes
   * the change visible in the token list and permanent if the user is re-enabled.
   */
  async function revokeOwnedTokens(
    tx: DbExecutor,
    userId: string,
    keepCoveredBy?: Role,
  ): Promise<string[]> {
    const owned = await authRepo.liveApiTokensOf(tx, userId);
    const doomed = owned
      .filter((t) => keepCoveredBy === undefined || !covers(keepCoveredBy, t.role))
      .map((t) => t.id);
    if (doomed.length > 0) await authRepo.revokeApiTokens(tx, uuids(doomed));
    return doomed;
  }

  /** The user a new token acts for: the signed-in user, or the owner of the token making it; null for the CLI/system. */
  async function ownerOf(tx: DbExecutor, actorId: string): Promise<User | null> {
    let userId: string | null = null;
    if (UUID.test(actorId)) userId = actorId;
    else if (actorId.startsWith('token:')) {
      const parent = await authRepo.apiTokenOwner(tx, actorId.slice('token:'.length));
      userId = parent?.ownerId ?? null;
    }
    if (userId === null) return null;
    return (await authRepo.userById(tx, userId)) ?? null;
  }

  return {
    async list(): Promise<PublicUser[]> {
      return (await authRepo.listUsers(deps.db)).map(publicUser);
    },

    /** The units a user is assigned (what a kitchen manager or collector sees). */
    async unitsOf(id: string): Promise<string[]> {
      await load(deps.db, id);
      return (await authRepo.unitIdsOf(deps.db, id)).map((r) => r.unitId).sort();
    },

    async create(
      input: {
        username: string;
        displayName: string;
        email?: string | null | undefined;
        role: Role;
        /** Pages and messages in this language; unset: the browser's. */
        language?: Lang | null | undefined;
      },
      actor: AuditActor,
    ) {
      return deps.db.transaction(async (tx) => {
        const username = input.username.toLowerCase();
        const taken = await authRepo.userIdByUsername(tx, username);
        if (taken) throw new AuthErrors.UsernameTaken(username);
        const id = await authRepo.insertUser(
          tx,
          username,
          input.displayName,
          input.email ?? null,
          input.role,
        );
        if (input.language) await authRepo.updateUser(tx, id, { language: input.language });
        const user = await load(tx, id);
        const setupLink = await issueLink(tx, user.id, 'setup');
        await deps.audit.record(
          {
            ...actor,
            action: 'user.create',
            targetType: 'user',
            targetId: user.id,
            before: null,
            after: auditView(user),
          },
          tx,
        );
        return { user: publicUser(user), setupLink };
      });
    },

    async update(
      id: string,
      patch: {
        role?: Role | undefined;
        disabled?: boolean | undefined;
        displayName?: string | undefined;
        email?: string | null | undefined;
        language?: Lang | null | undefined;
      },
      actor: AuditActor,
    ) {
      return deps.db.transaction(async (tx) => {
        const before = await load(tx, id, { lock: true });
        const set = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
        await authRepo.updateUser(tx, id, set);
        const after = await load(tx, id);
        // A role change or disabling ends the user's sessions (permissions are re-read at next
        // sign-in) and the API tokens the user no longer may hold: all when disabled.
        const roleChanged = patch.role !== undefined && patch.role !== before.role;
        if (patch.disabled === true || roleChanged) await revokeSessions(tx, id);
        const revokedTokens =
          patch.disabled === true
            ? await revokeOwnedTokens(tx, id)
            : roleChanged
              ? await revokeOwnedTokens(tx, id, after.role)
              : [];
        await deps.audit.record(
          {
            ...actor,
            action: patch.disabled === true ? 'user.disable' : 'user.update',
            targetType: 'user',
            targetId: id,
            before: auditView(before),
            after: { ...auditView(after), revokedTokens },
          },
          tx,
        );
        return publicUser(after);
      });
    },

    /**
     * The signed-in user's own language (null: follow the browser). The database takes the user
     * from the session's verified scope, so no one sets another's this way.
     */
    async setOwnLanguage(language: Lang | null, actor: AuditActor): Promise<void> {
      await deps.db.transaction(async (tx) => {
        await authRepo.setOwnLanguage(tx, language);
        await deps.audit.record(
          {
            ...actor,
            action: 'user.language',
            targetType: 'user',
            targetId: actor.actorId,
            after: { language },
          },
          tx,
        );
      });
    },

    async resetLink(id: string, actor: AuditActor): Promise<string> {
      return deps.db.transaction(async (tx) => {
        const u = await load(tx, id, { lock: true });
        const link = await issueLink(tx, id, u.passwordHash === null ? 'setup' : 'reset');
        await deps.audit.record(
          { ...actor, action: 'user.reset_link', targetType: 'user', targetId: id },
          tx,
        );
        return link;
      });
    },

    /** Uses a setup or reset link once: sets the password, ends every session of that user. */
    async completeLink(token: string, password: string, actor: AuditActor): Promise<PublicUser> {
      // The link's user, read without using the link up: their own name and e-mail may not be in the password.
      const holder = await authRepo.linkHolder(deps.db, sha256(token), deps.now());
      if (!holder) throw new AuthErrors.LinkInvalid();
      const problem = await passwordProblem(password, contextWords(holder));
      if (problem) throw new AuthErrors.WeakPassword(problem);
      const passwordHash = await hashPassword(password, params);
      return deps.db.transaction(async (tx) => {
        // The link's secret opens the change (migration 0019): spent, password set, sessions ended.
        const used = await authRepo.completeLink(tx, token, passwordHash);
        if (!used) throw new AuthErrors.LinkInvalid();
        const before = await load(tx, used.user_id);
        await deps.audit.record(
          {
            ...actor,
            actorId: before.id,
            actorRole: before.role,
            action: `user.password_${used.purpose}`,
            targetType: 'user',
            targetId: before.id,
          },
          tx,
        );
        return publicUser(before);
      });
    },

    async assignUnits(id: string, unitIds: string[], actor: AuditActor): Promise<string[]> {
      return deps.db.transaction(async (tx) => {
        await load(tx, id, { lock: true });
        const before = (await authRepo.unitIdsOf(tx, id)).map((r) => r.unitId).sort();
        if (unitIds.length > 0) {
          const found = await authRepo.countUnits(tx, unitIds);
          if (found !== new Set(unitIds).size) throw new AuthErrors.UnknownUnits();
        }
        await authRepo.setUserUnits(tx, id, uuids([...new Set(unitIds)]));
        const after = [...new Set(unitIds)].sort();
        await deps.audit.record(
          {
            ...actor,
            action: 'user.assign_units',
            targetType: 'user',
            targetId: id,
            before: { unitIds: before },
            after: { unitIds: after },
          },
          tx,
        );
        return after;
      });
    },

    /**
     * Data portability: everything we hold about the user, as JSON: the account, sessions with
     * their IPs and user agents, the audit entries they made and those about them (with the
     * request metadata still kept), and the alerts they acknowledged.
     */
    async exportAccount(id: string) {
      // In the caller's scope (api/scoped-services.ts): the alerts acknowledged are read through
      // row-level security like any other read.
      const tx = deps.db;
      {
        const u = await authRepo.userById(tx, id);
        if (!u) throw new AuthErrors.UserNotFound();
        const assigned = await authRepo.unitIdsOf(tx, id);
        const userSessions = await authRepo.sessionsOf(tx, id);
        const entries = await auditEntriesOfPerson(tx, id);
        const actorIds = new Set(await actorIdsOf(tx, id));
        const acknowledged = await authRepo.alertsAcknowledgedBy(tx, [...actorIds]);
        // Everything else they recorded (feedings, collections, settings, …): every column that
        // names a person, listed once in personal-records.ts and checked against the schema.
        const records = await personalRecords(tx, [...actorIds]);
        return {
          exportedAt: deps.now().toISOString(),
          user: {
            ...publicUser(u),
            number: u.number,
            passwordChangedAt: u.passwordChangedAt?.toISOString() ?? null,
          },
          assignedUnits: assigned.map((a) => a.unitId),
          sessions: userSessions,
          auditEntriesAsActor: entries.filter((e) => actorIds.has(e.actorId)),
          // What others did to them: where those others were is the others' data, not theirs.
          auditEntriesAboutUser: entries
            .filter((e) => e.targetType === 'user' && e.targetId === id)
            .map((e) =>
              actorIds.has(e.actorId) || e.actorId === 'anonymous'
                ? e
                : { ...e, ip: null, userAgent: null },
            ),
          alertsAcknowledged: acknowledged.map((a) => ({
            ...a,
            acknowledgedAt: a.acknowledgedAt?.toISOString() ?? null,
          })),
          records,
        };
      }
    },

    /**
     * Right to erasure: personal fields replaced, sign-in metadata removed (auth/personal-data.ts),
     * id and number kept: immutable records refer to the person by id, and displays now call them
     * "erased user #<number>" (actor_display_name(), migration 0017).
     */
    async erase(id: string, actor: AuditActor): Promise<PublicUser> {
      return deps.db.transaction(async (tx) => {
        const before = await load(tx, id, { lock: true });
        // The definer function (migration 0020) scrubs the account, ends and deletes its
        // sessions and spends its links; the rest of the sign-in metadata goes here.
        await eraseSignInMetadata(tx, before);
        await authRepo.eraseUser(tx, id);
        const after = await load(tx, id);
        const revokedTokens = await revokeOwnedTokens(tx, id);
        await deps.audit.record(
          {
            ...actor,
            action: 'user.erase',
            targetType: 'user',
            targetId: id,
            before: auditView(before),
            after: { ...auditView(after), revokedTokens },
          },
          tx,
        );
        return publicUser(after);
      });
    },

    /**
     * A token acts for its owner (the caller; null when the CLI or system makes it) and never
     * for more than the owner has: its role must be covered by the owner's, now and at every use.
     */
    async createApiToken(
      input: { name: string; role: Role; expiresInDays?: number | undefined },
      actor: AuditActor,
    ) {
      const maxDays = deps.apiTokenMaxDays ?? 365;
      const days = input.expiresInDays ?? Math.min(deps.apiTokenDefaultDays ?? 90, maxDays);
      if (days > maxDays) throw new AuthErrors.TokenLifetimeTooLong(maxDays);
      const token = newSecret('thm_');
      return deps.db.transaction(async (tx) => {
        const owner = await ownerOf(tx, actor.actorId);
        if (owner && (owner.disabled || owner.erasedAt || !covers(owner.role, input.role)))
          throw new AuthErrors.TokenRoleTooWide(`${owner.role} cannot hand out ${input.role}`);
        // The principal making it (a token acts with its own role, maybe narrower than its owner's).
        if (actor.actorRole !== 'system' && !covers(actor.actorRole as Role, input.role))
          throw new AuthErrors.TokenRoleTooWide(`${actor.actorRole} cannot hand out ${input.role}`);
        const expiresAt = new Date(deps.now().getTime() + days * 86_400_000);
        // The definer function takes creator and owner from the verified scope, not from here.
        const id = await authRepo.insertApiToken(
          tx,
          input.name,
          input.role,
          sha256(token),
          expiresAt,
        );
        const row = await authRepo.apiTokenById(tx, id);
        const view = {
          id: row!.id,
          name: row!.name,
          role: row!.role,
          ownerId: row!.ownerId,
          expiresAt: row!.expiresAt.toISOString(),
        };
        await deps.audit.record(
          {
            ...actor,
            action: 'api_token.create',
            targetType: 'api_token',
            targetId: row!.id,
            before: null,
            after: view,
          },
          tx,
        );
        return { ...view, token };
      });
    },

    /** Every token with its owner, expiry and last use (what an admin reviews). */
    async listApiTokens() {
      const rows = await authRepo.listApiTokens(deps.db);
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
      await deps.db.transaction(async (tx) => {
        const rows = await authRepo.revokeApiTokens(tx, uuids([id]));
        if (rows.length === 0) throw new AuthErrors.TokenNotFound();
        await deps.audit.record(
          {
            ...actor,
            action: 'api_token.revoke',
            targetType: 'api_token',
            targetId: id,
            before: { revoked: false },
            after: { revoked: true },
          },
          tx,
        );
      });
    },

    /** First start: no user yet, so make `admin` and hand back its one-time setup link. */
    async ensureBootstrapAdmin(): Promise<string | undefined> {
      if ((await authRepo.countUsers(deps.db)) > 0) return undefined;
      const { setupLink } = await this.create(
        { username: 'admin', displayName: 'Administrator', role: 'admin' },
        { actorId: 'system', actorRole: 'system', ip: null, userAgent: null, requestId: null },
      );
      return setupLink;
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;

/**
 * The user service for the owner's own work (CLI, bootstrap admin, tests' setup): every call
 * runs in its own transaction on `ownerDb`, in a trusted scope named by the call's actor (or
 * `system`). The API role cannot open a trusted scope, so this is no way around the checks.
 */
export function trustedUserService(ownerDb: Db, deps: Omit<UserDeps, 'db'>): UserService {
  const probe = createUserService({ ...deps, db: ownerDb });
  const system = { actorId: 'system', actorRole: 'system' };
  const isActor = (a: unknown): a is AuditActor =>
    typeof a === 'object' && a !== null && 'actorId' in a && 'actorRole' in a;
  return Object.fromEntries(
    Object.keys(probe).map((name) => [
      name,
      (...args: unknown[]) =>
        runScoped(ownerDb, trustedScope(args.find(isActor) ?? system), (tx) =>
          (
            createUserService({ ...deps, db: tx }) as unknown as Record<
              string,
              (...a: unknown[]) => Promise<unknown>
            >
          )[name]!(...args),
        ),
    ]),
  ) as UserService;
}
