import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditActor } from '../api/audit-context.ts';
import { roles } from './permissions.ts';
import { languages } from '../i18n/index.ts';
import type { ScopedServices } from '../api/scoped-services.ts';
import type { UserService } from './user-service.ts';

const userOut = z.object({
  id: z.string(),
  username: z.string(),
  displayName: z.string(),
  email: z.string().nullable(),
  role: z.enum(roles),
  language: z.enum(languages).nullable(),
  disabled: z.boolean(),
  erased: z.boolean(),
  createdAt: z.string(),
});
const idParams = z.object({ id: z.uuid() });
const tokenOut = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(roles),
  createdBy: z.string(),
  /** The user the token acts for; null when made by the CLI/system. */
  ownerId: z.string().nullable(),
  createdAt: z.string(),
  expiresAt: z.string(),
  lastUsedAt: z.string().nullable(),
  revoked: z.boolean(),
  expired: z.boolean(),
});

/** /api/v1/users and /api/v1/tokens: administration of people and automation credentials. */
export function userRoutes(deps: { users: ScopedServices<UserService> }): FastifyPluginAsync {
  return (base) => {
    const app = base.withTypeProvider<ZodTypeProvider>();
    const read = app.requirePermission('users:read');
    const write = app.requirePermission('users:write');

    app.get(
      '/users',
      {
        preHandler: read,
        schema: { tags: ['users'], response: { 200: z.object({ users: z.array(userOut) }) } },
      },
      async (request) => ({ users: await deps.users(request, (users) => users.list()) }),
    );

    app.post(
      '/users',
      {
        preHandler: write,
        schema: {
          tags: ['users'],
          summary: 'Create a user (one role); returns a single-use setup link',
          body: z.object({
            username: z.string().regex(/^[a-z0-9._-]{3,64}$/i),
            displayName: z.string().min(1).max(128),
            email: z.email().max(254).nullish(),
            role: z.enum(roles),
            language: z.enum(languages).nullish(),
          }),
          response: { 201: z.object({ user: userOut, setupLink: z.string() }) },
        },
      },
      async (request, reply) =>
        reply
          .status(201)
          .send(
            await deps.users(request, (users) => users.create(request.body, auditActor(request))),
          ),
    );

    app.patch(
      '/users/:id',
      {
        preHandler: write,
        schema: {
          tags: ['users'],
          summary:
            'Change role, name, e-mail, language (null: the browser’s), or disable (ends the sessions)',
          params: idParams,
          body: z.object({
            role: z.enum(roles).optional(),
            disabled: z.boolean().optional(),
            displayName: z.string().min(1).max(128).optional(),
            email: z.email().max(254).nullish(),
            language: z.enum(languages).nullish(),
          }),
          response: { 200: userOut },
        },
      },
      async (request) =>
        deps.users(request, (users) =>
          users.update(request.params.id, request.body, auditActor(request)),
        ),
    );

    // The language chooser in every page's header sends this (the client script adds the CSRF
    // header); null clears the choice: pages then follow the browser.
    app.put(
      '/users/me/language',
      {
        preHandler: app.requirePermission('account:self'),
        schema: {
          tags: ['users'],
          summary: 'Choose the language of your own pages (null: your browser’s)',
          body: z.object({ language: z.enum(languages).nullable() }),
        },
      },
      async (request, reply) => {
        // An API token has no person whose pages could follow a choice.
        if (request.principal?.kind !== 'user')
          return reply
            .status(400)
            .send({ code: 'NOT_A_USER', message: 'Only a signed-in user chooses a language' });
        const { language } = request.body;
        await deps.users(request, (users) => users.setOwnLanguage(language, auditActor(request)));
        return reply.status(204).send();
      },
    );

    // The same choice from the header's form posted without its script: a page route in effect,
    // answered with a redirect back to the page it came from (a local path only).
    app.post(
      '/users/me/language',
      {
        preHandler: app.requirePermission('account:self'),
        schema: {
          hide: true,
          body: z.object({
            language: z.enum([...languages, 'browser']),
            back: z.string().max(200).optional(),
          }),
        },
      },
      async (request, reply) => {
        if (request.principal?.kind !== 'user')
          return reply
            .status(400)
            .send({ code: 'NOT_A_USER', message: 'Only a signed-in user chooses a language' });
        const { language, back } = request.body;
        await deps.users(request, (users) =>
          users.setOwnLanguage(language === 'browser' ? null : language, auditActor(request)),
        );
        const local = back && /^\/(?![/\\])[\w\-/]*$/.test(back) ? back : '/';
        return reply.redirect(local, 303);
      },
    );

    app.post(
      '/users/:id/reset-link',
      {
        preHandler: write,
        schema: {
          tags: ['users'],
          summary: 'Issue a single-use, time-limited password link',
          params: idParams,
          response: { 200: z.object({ link: z.string() }) },
        },
      },
      async (request) => ({
        link: await deps.users(request, (users) =>
          users.resetLink(request.params.id, auditActor(request)),
        ),
      }),
    );

    app.put(
      '/users/:id/units',
      {
        preHandler: write,
        schema: {
          tags: ['users'],
          summary: 'Units a kitchen manager or collector may see',
          params: idParams,
          body: z.object({ unitIds: z.array(z.uuid()).max(1000) }),
          response: { 200: z.object({ unitIds: z.array(z.string()) }) },
        },
      },
      async (request) => ({
        unitIds: await deps.users(request, (users) =>
          users.assignUnits(request.params.id, request.body.unitIds, auditActor(request)),
        ),
      }),
    );

    app.get(
      '/users/:id/export',
      {
        preHandler: read,
        schema: {
          tags: ['privacy'],
          summary: 'A user’s account data (JSON), for a data-subject request',
          params: idParams,
        },
      },
      async (request) => deps.users(request, (users) => users.exportAccount(request.params.id)),
    );

    app.post(
      '/users/:id/erase',
      {
        preHandler: write,
        schema: {
          tags: ['privacy'],
          summary:
            'Erase personal fields and sign-in metadata; the id stays in immutable records, shown as "erased user #N"',
          params: idParams,
          response: { 200: userOut },
        },
      },
      async (request) =>
        deps.users(request, (users) => users.erase(request.params.id, auditActor(request))),
    );

    app.get(
      '/tokens',
      {
        preHandler: read,
        schema: { tags: ['users'], response: { 200: z.object({ tokens: z.array(tokenOut) }) } },
      },
      async (request) => ({ tokens: await deps.users(request, (users) => users.listApiTokens()) }),
    );

    app.post(
      '/tokens',
      {
        preHandler: write,
        schema: {
          tags: ['users'],
          summary: 'Create an API token for one role; the secret is shown once',
          body: z.object({
            name: z.string().min(1).max(128),
            role: z.enum(roles),
            expiresInDays: z.number().int().min(1).max(3650).optional(),
          }),
          response: {
            201: z.object({
              id: z.string(),
              name: z.string(),
              role: z.enum(roles),
              ownerId: z.string().nullable(),
              expiresAt: z.string(),
              token: z.string(),
            }),
          },
        },
      },
      async (request, reply) =>
        reply
          .status(201)
          .send(
            await deps.users(request, (users) =>
              users.createApiToken(request.body, auditActor(request)),
            ),
          ),
    );

    app.delete(
      '/tokens/:id',
      {
        preHandler: write,
        schema: {
          tags: ['users'],
          summary: 'Revoke an API token',
          params: idParams,
          response: { 204: z.null() },
        },
      },
      async (request, reply) => {
        await deps.users(request, (users) =>
          users.revokeApiToken(request.params.id, auditActor(request)),
        );
        return reply.status(204).send(null);
      },
    );
    return Promise.resolve();
  };
}
