import type { Client } from 'aedes';
import { InOrder } from './in-order.ts';
import { Pacer } from './pacer.ts';
import type { DeviceSession } from './types.ts';

export interface SessionState {
  session: DeviceSession;
  connectedAt: Date;
  rateLimitedLogged: boolean;
  /** Outcomes of its publishes, released in the order they arrived (PUBACKs in order). */
  acks: InOrder;
  /** Its publishes that wait for a rate-limit token, handled in the order they arrived. */
  pacer: Pacer;
}

export interface ConnectedClient {
  deviceId: string;
  certSerial: string;
  remoteAddress: string | undefined;
  connectedAt: string;
}

/**
 * The device sessions the broker holds: one per authenticated connection (from `authenticate`
 * until Aedes' clientDisconnect), and per device the connection that is live (the newest one
 * Aedes made ready: a takeover replaces the old one [MQTT-3.1.4-2]).
 */
export function createSessionRegistry() {
  const byClient = new Map<Client, SessionState>();
  const liveByDevice = new Map<string, Client>();
  return {
    get: (client: Client): SessionState | undefined => byClient.get(client),
    has: (client: Client): boolean => byClient.has(client),
    /** `authenticate` accepted this connection as this device. */
    add(client: Client, session: DeviceSession): void {
      byClient.set(client, {
        session,
        connectedAt: new Date(),
        rateLimitedLogged: false,
        acks: new InOrder(),
        pacer: new Pacer(),
      });
    },
    /** Aedes made the connection ready: it is the device's live one now. */
    ready(client: Client): SessionState | undefined {
      const state = byClient.get(client);
      if (state) liveByDevice.set(state.session.deviceId, client);
      return state;
    },
    /** The connection is gone; `wasLive` when it was still the device's live one. */
    remove(client: Client): { state: SessionState; wasLive: boolean } | undefined {
      const state = byClient.get(client);
      byClient.delete(client);
      if (!state) return undefined;
      const wasLive = liveByDevice.get(state.session.deviceId) === client;
      if (wasLive) liveByDevice.delete(state.session.deviceId);
      return { state, wasLive };
    },
    /** Live iteration (a client closed meanwhile, and so removed, is not visited). */
    entries: (): IterableIterator<[Client, SessionState]> => byClient.entries(),
    /** A snapshot, for a walk that awaits between clients. */
    all: (): [Client, SessionState][] => [...byClient],
    clients: (): IterableIterator<Client> => byClient.keys(),
    /** The authenticated client on this connection, if any. */
    byConnection: (conn: unknown): Client | null =>
      [...byClient.keys()].find((c) => c.conn === conn) ?? null,
    connected: (): ConnectedClient[] =>
      [...liveByDevice.values()].flatMap((client) => {
        const s = byClient.get(client);
        return s
          ? [
              {
                deviceId: s.session.deviceId,
                certSerial: s.session.certSerial,
                remoteAddress: s.session.remoteAddress,
                connectedAt: s.connectedAt.toISOString(),
              },
            ]
          : [];
      }),
  };
}

export type SessionRegistry = ReturnType<typeof createSessionRegistry>;
