import type { ConnectionIdentity } from './identity-fns.ts';

/**
 * The safety net behind the registry's events (a lost notification, a certificate expiring
 * mid-session): every live session is checked against the registry again. One query per
 * `chunk` sessions (`serial = ANY($1)`), not one per session: at 5,000 sessions every 30 s the
 * per-session form was ~170 transactions/s and several per cent of a core doing nothing else.
 */

/** A session may go on: its certificate is known, active and unexpired, its device neither suspended nor retired. */
export function stillValid(identity: ConnectionIdentity | undefined, nowMs: number): boolean {
  return (
    identity !== undefined &&
    identity.certStatus === 'active' &&
    identity.notAfter.getTime() > nowMs &&
    identity.deviceStatus !== 'suspended' &&
    identity.deviceStatus !== 'retired'
  );
}

/** The sessions (by key) the registry no longer stands behind. */
export async function sessionsToClose<K>(
  sessions: readonly { key: K; certSerial: string }[],
  lookup: (serials: string[]) => Promise<Map<string, ConnectionIdentity>>,
  now: () => number,
  chunk = 5000,
): Promise<K[]> {
  const out: K[] = [];
  for (let from = 0; from < sessions.length; from += chunk) {
    const part = sessions.slice(from, from + chunk);
    const found = await lookup([...new Set(part.map((s) => s.certSerial))]);
    const at = now();
    for (const s of part) if (!stillValid(found.get(s.certSerial), at)) out.push(s.key);
  }
  return out;
}
