import type { FastifyRequest } from 'fastify';
import type { Db } from '../db/client.ts';
import { runScoped, type Scope } from '../db/scoped.ts';
import { scopeOf } from './audit-context.ts';

/**
 * Runs a route's work as the API's database role inside runScoped: the services are built on
 * that request's transaction, so row-level security sees the caller (and `system` for the
 * token-authenticated enrolment, which has no user).
 */
export function scopedServices<S>(db: Db, make: (tx: Db) => S) {
  return <T>(request: FastifyRequest, fn: (services: S) => Promise<T>, scope?: Scope): Promise<T> =>
    // A drizzle transaction offers the same query API as the pool (nested transactions become savepoints).
    runScoped(db, scope ?? scopeOf(request), (tx) => fn(make(tx as unknown as Db)));
}

export type ScopedServices<S> = ReturnType<typeof scopedServices<S>>;
