import type { Logger } from 'pino';
import type { BrokerConfig, BrokerCounters } from './broker-context.ts';
import { normaliseSerial, type ConnectionIdentity } from './identity-fns.ts';
import type { RegistryCache } from './registry-cache.ts';
import { sessionsToClose } from './revalidation.ts';
import type { SessionRegistry, SessionState } from './sessions.ts';

export interface DeviceEventSource {
  on(
    event: 'certificate_revoked',
    listener: (e: { serial: string; deviceId: string }) => void,
  ): unknown;
  on(event: 'device_status', listener: (e: { deviceId: string; status: string }) => void): unknown;
  /** The event connection is back after a loss: notifications sent meanwhile were missed. */
  on(event: 'resync', listener: () => void): unknown;
}

export interface SessionControlDeps {
  config: Pick<BrokerConfig, 'revalidateIntervalMs'>;
  logger: Logger;
  sessions: Pick<SessionRegistry, 'entries' | 'all' | 'get'>;
  counters: Pick<BrokerCounters, 'cutOffs'>;
  identity: {
    connectionIdentities(serialsHex: string[]): Promise<Map<string, ConnectionIdentity>>;
  };
  /** Cached registry answers: dropped when an event says they changed. */
  registry: Pick<RegistryCache, 'invalidateSerial' | 'invalidateDevice' | 'clear'>;
  events?: DeviceEventSource;
  /** Current CRL PEMs, re-read when a certificate is revoked. */
  crl?: () => Promise<string[] | undefined>;
  /** Where new CRLs go (the TLS listener's secure context). */
  setCrl(crl: string[] | undefined): void;
}

/**
 * Live sessions follow the registry: a revoked certificate or a suspended or retired device is
 * cut off when its NOTIFY arrives (devices/device-events.ts), and every session is re-checked
 * after a lost event connection and on a timer (the safety net behind the events).
 */
export function createSessionControl(deps: SessionControlDeps) {
  const { logger, sessions, counters } = deps;

  function closeWhere(predicate: (s: SessionState) => boolean, why: string): number {
    let n = 0;
    for (const [client, state] of sessions.entries()) {
      if (!predicate(state)) continue;
      n++;
      counters.cutOffs++;
      logger.warn(
        { deviceId: state.session.deviceId, certSerial: state.session.certSerial, why },
        'cutting off device session',
      );
      client.close();
    }
    return n;
  }

  // Refreshes overlap (two revocations in a row): a CRL read earlier but answered later must not
  // replace a newer one, or the second revocation would vanish from the TLS listener until the next.
  let crlAsked = 0;
  let crlApplied = 0;
  async function refreshCrl(): Promise<void> {
    if (!deps.crl) return;
    const mine = ++crlAsked;
    const crl = await deps.crl();
    if (mine < crlApplied) return;
    crlApplied = mine;
    deps.setCrl(crl);
  }

  // Safety net behind the events (a lost notification, a certificate expiring mid-session).
  const revalidate = async (): Promise<void> => {
    // One query per sweep (revalidation.ts), not one per session.
    const live = sessions
      .all()
      .map(([client, state]) => ({ key: client, certSerial: state.session.certSerial }));
    for (const client of await sessionsToClose(
      live,
      (serials) => deps.identity.connectionIdentities(serials),
      Date.now,
    )) {
      const state = sessions.get(client);
      if (!state) continue;
      counters.cutOffs++;
      logger.warn(
        { deviceId: state.session.deviceId },
        'session no longer valid in the registry: closing',
      );
      client.close();
    }
  };

  deps.events?.on('certificate_revoked', (e) => {
    const serial = normaliseSerial(e.serial);
    deps.registry.invalidateSerial(serial);
    closeWhere((s) => s.session.certSerial === serial, 'certificate revoked');
    refreshCrl().catch((err: unknown) => logger.error({ err }, 'could not refresh the CRL'));
  });
  deps.events?.on('device_status', (e) => {
    deps.registry.invalidateDevice(e.deviceId);
    if (e.status === 'suspended' || e.status === 'retired')
      closeWhere((s) => s.session.deviceId === e.deviceId, `device ${e.status}`);
  });
  // A revocation or suspension notified while the event connection was down (a database restart)
  // was never delivered: re-read the CRL and re-check every live session at once.
  deps.events?.on('resync', () => {
    deps.registry.clear();
    refreshCrl().catch((err: unknown) => logger.error({ err }, 'could not refresh the CRL'));
    revalidate().catch((err: unknown) =>
      logger.warn({ err }, 'revalidation after the event connection came back failed'),
    );
  });
  const revalidateTimer = setInterval(() => {
    revalidate().catch((err: unknown) => logger.warn({ err }, 'revalidation failed'));
  }, deps.config.revalidateIntervalMs);
  revalidateTimer.unref();

  return {
    closeWhere,
    refreshCrl,
    disconnectCertificate: (serial: string) =>
      closeWhere((s) => s.session.certSerial === normaliseSerial(serial), 'certificate revoked'),
    disconnectDevice: (deviceId: string) =>
      closeWhere((s) => s.session.deviceId === deviceId, 'device disabled'),
    /** One revalidation sweep now (what the timer runs): for the storm bench and tests. */
    revalidateNow: (): Promise<void> => revalidate(),
    stop: (): void => clearInterval(revalidateTimer),
  };
}
