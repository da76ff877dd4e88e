import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ConnectionIdentity } from './identity-fns.ts';
import { sessionsToClose, stillValid } from './revalidation.ts';

const now = Date.UTC(2026, 10, 30);
const identity = fc.record({
  deviceId: fc.constant('d'),
  unitId: fc.constant('u'),
  kind: fc.constant('biodigester' as const),
  deviceStatus: fc.constantFrom(
    'pending' as const,
    'active' as const,
    'suspended' as const,
    'retired' as const,
  ),
  certStatus: fc.constantFrom('active', 'revoked'),
  notAfter: fc.integer({ min: -5, max: 5 }).map((d) => new Date(now + d * 1000)),
});

describe('revalidation sweep', () => {
  it('closes exactly the sessions the registry no longer stands behind, with one query per chunk of sessions', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.option(identity, { nil: undefined }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 25 }),
        async (registry, chunk) => {
          const sessions = registry.map((_, i) => ({ key: i, certSerial: `s${i}` }));
          const queries: string[][] = [];
          const lookup = (serials: string[]): Promise<Map<string, ConnectionIdentity>> => {
            queries.push(serials);
            return Promise.resolve(
              new Map(
                serials.flatMap((s) =>
                  registry[Number(s.slice(1))] ? [[s, registry[Number(s.slice(1))]!] as const] : [],
                ),
              ),
            );
          };
          const closed = await sessionsToClose(sessions, lookup, () => now, chunk);
          expect(closed).toEqual(registry.flatMap((r, i) => (stillValid(r, now) ? [] : [i])));
          expect(queries).toHaveLength(Math.ceil(sessions.length / chunk));
          const valid = (r: ConnectionIdentity | undefined): boolean =>
            !!r &&
            r.certStatus === 'active' &&
            r.notAfter.getTime() > now &&
            (r.deviceStatus === 'active' || r.deviceStatus === 'pending');
          for (const r of registry) expect(stillValid(r, now)).toBe(valid(r));
        },
      ),
    );
  });
});
