import { isLang, languages, type Lang } from '../i18n/index.ts';
import os from 'node:os';
import type { Command } from 'commander';
import type { Pool } from 'pg';
import { roles, type Role } from '../auth/permissions.ts';
import type { UserService } from '../auth/user-service.ts';
import type { Config } from '../config/index.ts';
import { CliError } from './errors.ts';
import { withDatabase } from './context.ts';

function withUsers<T>(cfg: Config, fn: (users: UserService, pool: Pool) => Promise<T>): Promise<T> {
  return withDatabase(cfg, async (rt, logger) => {
    const [{ publicBaseUrl }, { createAuditLog, openAuditSigner }, { trustedUserService }] =
      await Promise.all([
        import('../api/public-url.ts'),
        import('../audit/index.ts'),
        import('../auth/user-service.ts'),
      ]);
    const db = rt.database.db;
    const signer = await openAuditSigner(cfg.pki, logger);
    // Each call in its own transaction, in a trusted scope named by the CLI's actor (migration 0019).
    const users = trustedUserService(db, {
      audit: createAuditLog({ db, signer }),
      now: () => new Date(),
      publicBaseUrl: publicBaseUrl(cfg),
      apiTokenDefaultDays: cfg.auth.apiTokenDefaultDays,
      apiTokenMaxDays: cfg.auth.apiTokenMaxDays,
    });
    return fn(users, rt.database.pool);
  });
}

/** The CLI acts as `cli:<os user>`; the audit log records that, with role `system`. */
function cliActor() {
  return {
    actorId: `cli:${os.userInfo().username}`,
    actorRole: 'system',
    ip: null,
    userAgent: 'thamani-cli',
    requestId: null,
  };
}

export function registerUserCommands(program: Command, config: () => Config): void {
  const user = program.command('user').description('operator accounts (one role each)');

  user
    .command('add <username>')
    .description('create a user and print a single-use setup link')
    .requiredOption('-r, --role <role>', `one of ${roles.join(', ')}`)
    .option('-n, --name <displayName>', 'display name (default: the username)')
    .option('-e, --email <email>', 'e-mail address')
    .option('-l, --language <lang>', `pages in ${languages.join(' or ')} (default: the browser's)`)
    .action(
      async (
        username: string,
        opts: { role: string; name?: string; email?: string; language?: string },
      ) => {
        if (!(roles as readonly string[]).includes(opts.role))
          throw new CliError(`--role must be one of ${roles.join(', ')}`, 64);
        if (opts.language !== undefined && !isLang(opts.language))
          throw new CliError(`--language must be one of ${languages.join(', ')}`, 64);
        if (!/^[a-z0-9._-]{3,64}$/i.test(username))
          throw new CliError('username: 3-64 of a-z 0-9 . _ -', 64);
        const { user: made, setupLink } = await withUsers(config(), (users) =>
          users.create(
            {
              username,
              displayName: opts.name ?? username,
              email: opts.email ?? null,
              role: opts.role as Role,
              language: opts.language as Lang | undefined,
            },
            cliActor(),
          ),
        );
        process.stdout.write(
          `created ${made.username} (${made.role}, id ${made.id})\nsetup link (single use, expires in 72 h): ${setupLink}\n`,
        );
      },
    );

  user
    .command('language <username> <lang>')
    .description(
      `the language of a user's pages: ${languages.join(', ')}, or "browser" (the browser's)`,
    )
    .action(async (username: string, lang: string) => {
      if (lang !== 'browser' && !isLang(lang))
        throw new CliError(`language must be one of ${languages.join(', ')} or browser`, 64);
      await withUsers(config(), async (users) => {
        const u = (await users.list()).find((x) => x.username === username.toLowerCase());
        if (!u) throw new CliError(`no user ${username}`, 1);
        await users.update(u.id, { language: lang === 'browser' ? null : lang }, cliActor());
      });
      process.stdout.write(`${username}: pages in ${lang}\n`);
    });

  user
    .command('token <name>')
    .description(
      'create an API token acting with one role (for automation and the simulators); printed once',
    )
    .requiredOption('-r, --role <role>', `one of ${roles.join(', ')}`)
    .option(
      '--days <n>',
      'expire after n days (default API_TOKEN_DEFAULT_DAYS, at most API_TOKEN_MAX_DAYS)',
      (v) => Number.parseInt(v, 10),
    )
    .option('--json', 'print one JSON object')
    .action(async (name: string, opts: { role: string; days?: number; json?: boolean }) => {
      if (!(roles as readonly string[]).includes(opts.role))
        throw new CliError(`--role must be one of ${roles.join(', ')}`, 64);
      const made = await withUsers(config(), (users) =>
        users.createApiToken(
          { name, role: opts.role as Role, expiresInDays: opts.days },
          cliActor(),
        ),
      );
      process.stdout.write(
        opts.json
          ? `${JSON.stringify(made)}\n`
          : `API token "${made.name}" (${made.role}, expires ${made.expiresAt}), shown only now:\n\n  ${made.token}\n\nSend it as "Authorization: Bearer <token>".\n`,
      );
    });

  user
    .command('tokens')
    .description('list API tokens: role, owner, expiry, last use, state')
    .option('--json', 'print one JSON array')
    .action(async (opts: { json?: boolean }) => {
      const { tokens, people } = await withUsers(config(), async (users) => ({
        tokens: await users.listApiTokens(),
        people: await users.list(),
      }));
      if (opts.json) return void process.stdout.write(`${JSON.stringify(tokens)}\n`);
      const names = new Map(people.map((p) => [p.id, p.username]));
      process.stdout.write('id\tname\trole\towner\texpires\tlast used\tstate\n');
      for (const t of tokens) {
        const state = t.revoked ? 'revoked' : t.expired ? 'expired' : 'active';
        const owner = t.ownerId ? (names.get(t.ownerId) ?? t.ownerId) : `(${t.createdBy})`;
        process.stdout.write(
          `${t.id}\t${t.name}\t${t.role}\t${owner}\t${t.expiresAt}\t${t.lastUsedAt ?? 'never'}\t${state}\n`,
        );
      }
    });

  user
    .command('list')
    .description('list users')
    .action(async () => {
      const list = await withUsers(config(), (users) => users.list());
      // The display name last: "erased user #N" once erased (the name is gone, the id stays).
      for (const u of list)
        process.stdout.write(
          `${u.username}\t${u.role}\t${u.erased ? 'erased' : u.disabled ? 'disabled' : 'active'}\t${u.id}\t${u.displayName}\n`,
        );
    });

  user
    .command('assign <username> <units...>')
    .description(
      'the units (by name or id) a kitchen manager or collector sees; replaces their list (none: give no unit)',
    )
    .option('--site <site>', 'site of the units, when a name is not unique')
    .action(async (username: string, unitNames: string[], opts: { site?: string }) => {
      const assigned = await withUsers(config(), async (users, pool) => {
        const u = (await users.list()).find((x) => x.username === username.toLowerCase());
        if (!u) throw new CliError(`no user ${username}`, 1);
        const names = unitNames.filter((n) => n !== 'none');
        const { deviceRepo } = await import('../devices/device-repo.ts');
        const rows = await deviceRepo.unitsNamed(pool, names, opts.site ?? null);
        for (const n of names) {
          const found = rows.filter((r) => r.name === n || r.id === n);
          if (found.length === 0)
            throw new CliError(`no unit ${n}${opts.site ? ` at ${opts.site}` : ''}`, 1);
          if (found.length > 1)
            throw new CliError(
              `unit name ${n} is used at ${found.map((f) => f.site).join(', ')}: add --site`,
              64,
            );
        }
        await users.assignUnits(
          u.id,
          rows.map((r) => r.id),
          cliActor(),
        );
        return rows;
      });
      process.stdout.write(
        assigned.length
          ? `${username} now sees: ${assigned.map((r) => `${r.name} (${r.site})`).join(', ')}\n`
          : `${username} sees no unit\n`,
      );
    });

  user
    .command('disable <username>')
    .description('disable a user and end their sessions')
    .action(async (username: string) => {
      await withUsers(config(), async (users) => {
        const u = (await users.list()).find((x) => x.username === username.toLowerCase());
        if (!u) throw new CliError(`no user ${username}`, 1);
        await users.update(u.id, { disabled: true }, cliActor());
      });
      process.stdout.write(`disabled ${username}\n`);
    });

  user
    .command('export <username>')
    .description(
      'everything held about a user, as JSON (a data-subject request): account, sessions, the audit entries they made and those about them, alerts acknowledged',
    )
    .action(async (username: string) => {
      const data = await withUsers(config(), async (users) =>
        users.exportAccount((await find(users, username)).id),
      );
      process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    });

  user
    .command('erase <username>')
    .description(
      'erase a user: personal fields, sessions and sign-in metadata go; the id stays in immutable records, shown as "erased user #N"',
    )
    .action(async (username: string) => {
      const erased = await withUsers(config(), async (users) =>
        users.erase((await find(users, username)).id, cliActor()),
      );
      process.stdout.write(`erased ${username}: now ${erased.displayName} (id ${erased.id})\n`);
    });
}

/** A user by username or id. */
async function find(users: UserService, key: string) {
  const u = (await users.list()).find((x) => x.username === key.toLowerCase() || x.id === key);
  if (!u) throw new CliError(`no user ${key}`, 1);
  return u;
}
