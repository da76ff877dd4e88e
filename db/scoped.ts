import { sql } from 'drizzle-orm';
import type pg from 'pg';
import createError from '@fastify/error';
import type { Db } from './client.ts';

/** A drizzle handle or an open transaction on it: repos accept either. */
export type DbExecutor = Db | Parameters<Parameters<Db['transaction']>[0]>[0];

/**
 * What a transaction's scope is proven by (docs/decisions/0009-verified-scope.md). The database
 * hashes the secret and looks it up; the policies then read only the scope it verified.
 * `trusted` names an actor and role outright and works only on the owner's connections (CLI,
 * bootstrap, background jobs): the API role may not call it.
 */
export type ScopeCredential =
  | { readonly kind: 'session'; readonly secret: string }
  | { readonly kind: 'api-token'; readonly secret: string }
  | { readonly kind: 'enrolment'; readonly secret: string }
  /** An MRV verifier's token: read-only, its digesters and period only (migration 0031, docs/mrv.md). */
  | { readonly kind: 'mrv-verifier'; readonly secret: string }
  | { readonly kind: 'trusted'; readonly actorId: string; readonly role: string };

export const ScopeErrors = {
  /** The credential no longer opens a scope (revoked or expired since it was checked). */
  Refused: createError('SCOPE_REFUSED', 'Your credentials are no longer valid', 401),
};

const enter = {
  session: (c: { secret: string }) => sql`SELECT thamani_enter_session(${c.secret}) AS role`,
  'api-token': (c: { secret: string }) => sql`SELECT thamani_enter_api_token(${c.secret}) AS role`,
  enrolment: (c: { secret: string }) => sql`SELECT thamani_enter_enrolment(${c.secret}) AS role`,
  'mrv-verifier': (c: { secret: string }) =>
    sql`SELECT thamani_enter_mrv_verifier(${c.secret}) AS role`,
  trusted: (c: { actorId: string; role: string }) =>
    sql`SELECT thamani_enter_trusted(${c.actorId}, ${c.role}) AS role`,
};

/**
 * Runs fn in a transaction whose scope the database verified from `credential`. Row-level
 * security reads only that scope, so what a query returns is limited in the database, whatever
 * the code above it does or sets. The one way to run in a caller's scope: routes reach it
 * through api/scoped-services.ts, the CLI and background work with a `trusted` credential.
 * An enrolment token that opens nothing leaves the scope empty (the service then refuses the
 * token with its own error); any other credential that opens nothing is refused here.
 */
export async function runScoped<T>(
  db: Db,
  credential: ScopeCredential,
  fn: (tx: DbExecutor) => Promise<T>,
): Promise<T> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.execute<{ role: string | null }>(
      credential.kind === 'trusted'
        ? enter.trusted(credential)
        : enter[credential.kind](credential),
    );
    if (rows[0]?.role == null && credential.kind !== 'enrolment') throw new ScopeErrors.Refused();
    return fn(tx);
  });
}

/** The owner's own work, as `actor` with `role` (the CLI, the bootstrap admin, jobs). */
export function trustedScope(actor: { actorId: string; actorRole: string }): ScopeCredential {
  return { kind: 'trusted', actorId: actor.actorId, role: actor.actorRole };
}

/**
 * A pg-style `query(text, params)` over a drizzle handle or transaction, for SQL that is easier
 * to read as text (db/timeseries.ts). `$n` placeholders become bound parameters, never text.
 */
export function asQueryable(tx: DbExecutor): {
  query<R extends object = Record<string, unknown>>(
    text: string,
    params?: unknown[],
  ): Promise<{ rows: R[] }>;
} {
  return {
    async query<R extends object>(text: string, params: unknown[] = []) {
      const parts = text.split(/\$(\d+)/);
      const chunks = parts.map((part, i) =>
        i % 2 === 0 ? sql.raw(part) : sql.param(params[Number(part) - 1]),
      );
      const result = await tx.execute(sql.join(chunks));
      return { rows: result.rows as R[] };
    },
  };
}

/**
 * The connection an open drizzle transaction runs on, for what drizzle cannot send (a COPY
 * stream: db/pg-copy-out.ts). Statements on it are part of the transaction. Throws for a handle
 * that is not in a transaction (its queries may each take another pooled connection).
 */
export function transactionClient(tx: DbExecutor): pg.ClientBase {
  const client = (tx as unknown as { session?: { client?: unknown } }).session?.client;
  if (!client || typeof (client as { release?: unknown }).release !== 'function')
    throw new Error('transactionClient: not a transaction');
  return client as pg.ClientBase;
}

/**
 * Statements on one transaction, one after another, answered like `Promise.all`: a connection
 * runs one statement at a time, so sending them together gains nothing, and node-postgres 9
 * refuses a statement sent while another runs (test/pg-one-query-at-a-time.ts fails a test that
 * does it).
 */
export async function inTurn<const T extends readonly (() => Promise<unknown>)[]>(
  ...statements: T
): Promise<{ -readonly [K in keyof T]: Awaited<ReturnType<T[K]>> }> {
  const out: unknown[] = [];
  for (const s of statements) out.push(await s());
  return out as { -readonly [K in keyof T]: Awaited<ReturnType<T[K]>> };
}
