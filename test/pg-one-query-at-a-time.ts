/**
 * Every test file runs with this guard (vitest.config.ts, setupFiles): a statement sent on a
 * connection while another is still running there fails the test that was running.
 *
 * node-postgres 8 queues such a statement and warns ("Calling client.query() when the client is
 * already executing a query is deprecated and will be removed in pg@9.0"), once per process and
 * only from the third at once; pg 9 drops the queue. Code that sends statements together on one
 * transaction (`Promise.all` over queries on the same `tx`) gains nothing, since one connection
 * runs one statement at a time, and breaks with pg 9. The guard reads node-postgres' own state
 * (the query it is running or has queued), the very condition it warns about, from the second
 * statement on.
 */
import pg from 'pg';
import { afterAll, afterEach } from 'vitest';

interface ClientState {
  _activeQuery?: { text?: string } | null;
  _queryQueue?: { text?: string }[];
}

const violations: string[] = [];
const describeStatement = (q: unknown): string => {
  const text = typeof q === 'string' ? q : (q as { text?: unknown } | null)?.text;
  return typeof text === 'string' ? text.replace(/\s+/g, ' ').slice(0, 160) : '(a submittable)';
};

const original = Object.getOwnPropertyDescriptor(pg.Client.prototype, 'query')!.value as (
  this: pg.Client,
  ...a: unknown[]
) => unknown;
pg.Client.prototype.query = function guardedQuery(this: pg.Client, ...args: unknown[]) {
  const state = this as unknown as ClientState;
  const running = state._activeQuery ?? state._queryQueue?.[0];
  if (running) {
    violations.push(
      `"${describeStatement(args[0])}" sent while "${describeStatement(running)}" was still running on the same connection\n${new Error('sent from').stack ?? ''}`,
    );
  }
  return original.apply(this, args);
} as typeof pg.Client.prototype.query;

const check = () => {
  if (violations.length === 0) return;
  const found = violations.splice(0);
  throw new Error(
    `${found.length} statement(s) sent on a connection that was still running another (one connection runs one statement at a time; await each):\n${found.join('\n\n')}`,
  );
};
afterEach(check);
afterAll(check);
