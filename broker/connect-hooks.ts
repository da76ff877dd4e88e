import type { AedesOptions, Client } from 'aedes';
import type { Logger } from 'pino';
import type { Admission } from './admission.ts';
import type { BrokerConfig, BrokerCounters } from './broker-context.ts';
import { ConnectRefused, type ConnectRefusal } from './broker-errors.ts';
import type { ConnectVerdict, DeviceLimits } from './device-limits.ts';
import type { SharedConnectLimits } from './shared-limits.ts';
import {
  decideConnect,
  decideProtocol,
  normaliseFingerprint,
  normaliseSerial,
  type ConnectionIdentity,
} from './identity-fns.ts';
import { peerCn, socketOf } from './peer.ts';
import { RegistryChanging, type RegistryCache } from './registry-cache.ts';
import type { Refusals } from './refusals.ts';
import type { SessionRegistry } from './sessions.ts';

export interface ConnectHookDeps {
  config: BrokerConfig;
  logger: Logger;
  identity: { markConnected(deviceId: string): Promise<void> };
  /** Registry answers at CONNECT, gathered and kept until an event says otherwise (registry-cache.ts). */
  registry: Pick<RegistryCache, 'get' | 'invalidateDevice'>;
  sessions: Pick<SessionRegistry, 'add'>;
  limits: Pick<DeviceLimits, 'admitConnect'>;
  /** The same budget across the nodes of a cluster (broker/shared-limits.ts); absent: one node. */
  sharedLimits?: Pick<SharedConnectLimits, 'admitConnect'>;
  counters: Pick<BrokerCounters, 'connectionsRefused' | 'connectsThrottled'>;
  refusals: Refusals;
  admission: Pick<Admission, 'connectReceived'>;
}

/**
 * CONNECT: `preConnect` (protocol level, CONNECT rate per device) then `authenticate` (the
 * verified certificate against the registry: decideConnect in identity-fns.ts). A device that
 * passes gets its session in the registry.
 */
export function createConnectHooks(
  deps: ConnectHookDeps,
): Pick<Required<AedesOptions>, 'preConnect' | 'authenticate'> {
  const { config, logger, counters, refusals } = deps;
  const connectPackets = new WeakMap<Client, { keepalive: number; will?: { topic: string } }>();

  /**
   * A refusal decided at CONNECT before authenticate: Aedes would close without a CONNACK, so the
   * CONNACK is written here [MQTT-3.2.2-5], then the connection closes.
   */
  function refuseEarly(
    client: Client,
    clientId: string,
    reason: ConnectRefusal,
    details: Record<string, unknown>,
    done: (err: Error | null, ok: boolean) => void,
  ): void {
    const refusal = new ConnectRefused(reason);
    counters.connectionsRefused++;
    refusals.record('security.connect_refused', client, reason, clientId, {
      returnCode: refusal.returnCode,
      ...details,
    });
    // CONNACK: type 2, remaining length 2, no session present, the return code [MQTT-3.2.2].
    client.conn.write(Buffer.from([0x20, 0x02, 0x00, refusal.returnCode]), () =>
      done(refusal, false),
    );
  }

  async function authenticate(client: Client, hasCredentials: boolean): Promise<void> {
    const socket = socketOf(client);
    const cert = socket?.getPeerCertificate();
    const cnRaw = cert && Object.keys(cert).length > 0 ? cert.subject?.CN : undefined;
    const certCn = Array.isArray(cnRaw) ? undefined : cnRaw;
    const packet = connectPackets.get(client);
    const serial = cert?.serialNumber ? normaliseSerial(cert.serialNumber) : undefined;
    const decide = async (): Promise<ConnectionIdentity> => {
      const identity =
        certCn && serial && socket?.authorized ? await deps.registry.get(serial) : undefined;
      const refusal = decideConnect(
        {
          certCn: socket?.authorized ? certCn : undefined,
          clientId: client.id,
          hasCredentials,
          keepalive: packet?.keepalive ?? 0,
          will: packet?.will,
          now: new Date(),
        },
        identity,
        config,
      );
      if (refusal || !identity) throw new ConnectRefused(refusal ?? 'unknown_certificate');
      return identity;
    };
    let identity = await decide();
    if (identity.deviceStatus === 'pending') {
      await deps.identity.markConnected(identity.deviceId);
      // Read again: the status changed, and an event may have arrived during the write.
      deps.registry.invalidateDevice(identity.deviceId);
      identity = await decide();
    }
    if (!serial || !cert) throw new ConnectRefused('unknown_certificate');
    deps.sessions.add(client, {
      deviceId: identity.deviceId,
      unitId: identity.unitId,
      kind: identity.kind,
      certSerial: serial,
      certFingerprint: normaliseFingerprint(cert.fingerprint256),
      clientId: client.id,
      remoteAddress: socket?.remoteAddress,
    });
  }

  return {
    // Both hooks run on device input: whatever throws in them is caught here, so that a bug costs
    // one connection, never the process (input-guard.ts).
    preConnect(client, packet, done) {
      try {
        connectPackets.set(client, {
          keepalive: packet.keepalive ?? 0,
          ...(packet.will ? { will: { topic: packet.will.topic } } : {}),
        });
        const socket = socketOf(client);
        deps.admission.connectReceived(socket?.remoteAddress, socket?.remotePort);
        // Aedes would accept MQTT 3.1 (level 3); the contract is 3.1.1 only [MQTT-3.1.2-2].
        const protocol = decideProtocol(packet.protocolVersion);
        if (protocol) return refuseEarly(client, packet.clientId, protocol, {}, done);
        const cn = socket?.authorized ? peerCn(socket) : undefined;
        const admitted = cn === undefined ? ({ ok: true } as const) : deps.limits.admitConnect(cn);
        const throttle = (verdict: ConnectVerdict & { ok: false }): void => {
          counters.connectsThrottled++;
          refuseEarly(
            client,
            packet.clientId,
            'connect_rate_exceeded',
            {
              retryAfterMs: Math.round(verdict.retryAfterMs),
              connectsPerWindow: config.connectsPerWindow,
            },
            done,
          );
        };
        if (!admitted.ok) return throttle(admitted);
        // Clustered: the same budget on every node (a device hopping nodes gets one budget).
        if (cn !== undefined && deps.sharedLimits) {
          deps.sharedLimits.admitConnect(cn).then(
            (shared) => {
              try {
                if (shared.ok) done(null, true);
                else throttle(shared);
              } catch (err) {
                refusals.hookFailed('preConnect', client, err);
              }
            },
            (err: unknown) => refusals.hookFailed('preConnect', client, err),
          );
          return;
        }
      } catch (err) {
        refusals.hookFailed('preConnect', client, err);
        return done(new ConnectRefused('registry_unavailable'), false);
      }
      done(null, true);
    },
    authenticate(client, username, password, done) {
      authenticate(client, username !== undefined || password !== undefined)
        .then(
          () => done(null, true),
          (err: unknown) => {
            const refusal =
              err instanceof ConnectRefused ? err : new ConnectRefused('registry_unavailable');
            if (!(err instanceof ConnectRefused) && !(err instanceof RegistryChanging))
              logger.error({ err }, 'registry lookup failed during CONNECT');
            counters.connectionsRefused++;
            refusals.record('security.connect_refused', client, refusal.reason, client.id, {
              returnCode: refusal.returnCode,
            });
            done(refusal, null);
          },
        )
        .catch((err: unknown) => refusals.hookFailed('authenticate', client, err));
    },
  };
}
