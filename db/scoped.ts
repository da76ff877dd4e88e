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
