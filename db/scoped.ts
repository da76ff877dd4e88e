import { sql } from 'drizzle-orm';
import type { Db } from './client.ts';

/** A drizzle handle or an open transaction on it: repos accept either. */
export type DbExecutor = Db | Parameters<Parameters<Db['transaction']>[0]>[0];

export interface Scope {
  /** Audit/RLS identity of the caller (user id, `token:<id>`, `device:<id>`, `system`). */
  actorId: string;
  /** One of auth/permissions.ts roles, or `system` for internal jobs. */
  role: string;
}

/**
 * Runs fn in a transaction that carries the caller's identity as transaction-local settings
 * (`thamani.actor_id`, `thamani.role`). Row-level security policies read them, so what a query
 * returns is limited in the database, whatever the code above it does.
 */
export async function runScoped<T>(db: Db, scope: Scope, fn: (tx: DbExecutor) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`SELECT set_config('thamani.actor_id', ${scope.actorId}, true), set_config('thamani.role', ${scope.role}, true)`);
    return fn(tx);
  });
}

/**
 * A pg-style `query(text, params)` over a drizzle handle or transaction, for SQL that is easier
 * to read as text (db/timeseries.ts). `$n` placeholders become bound parameters, never text.
 */
export function asQueryable(tx: DbExecutor): { query<R extends object = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: R[] }> } {
  return {
    async query<R extends object>(text: string, params: unknown[] = []) {
      const parts = text.split(/\$(\d+)/);
      const chunks = parts.map((part, i) => (i % 2 === 0 ? sql.raw(part) : sql.param(params[Number(part) - 1])));
      const result = await tx.execute(sql.join(chunks));
      return { rows: result.rows as R[] };
    },
  };
}
