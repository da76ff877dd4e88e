import type { AedesOptions, Client, PublishPacket, PubrelPacket, Subscription } from 'aedes';
import type { Logger } from 'pino';
import type { BrokerCounters } from './broker-context.ts';
import type { InputGuard } from './input-guard.ts';
import type { Refusals } from './refusals.ts';
import type { SessionRegistry } from './sessions.ts';
import { authorizeDeviceSubscribe, isExpiredCommand, mayForward } from './topic-policy.ts';

export interface SubscribeHookDeps {
  logger: Logger;
  sessions: Pick<SessionRegistry, 'get'>;
  counters: Pick<BrokerCounters, 'subscribesDenied'>;
  refusals: Refusals;
  guard: Pick<InputGuard, 'hookFailed'>;
  /** BrokerRoutes.onSubscribed, once routes are given. */
  onSubscribed(): ((deviceId: string, suffixes: string[]) => void) | undefined;
  /** BrokerRoutes.onDelivered, once routes are given. */
  onDelivered(): ((deviceId: string, suffix: string, payload: Buffer) => void) | undefined;
}

/**
 * Downstream: which filters a device may subscribe to (its own topics, QoS at most 1), which
 * messages it is sent (authorizeForward: a second check at delivery), and who is told that a
 * subscription was granted (Aedes' `subscribe` event, `subscribed` here).
 */
export function createSubscribeHooks(deps: SubscribeHookDeps): Pick<
  Required<AedesOptions>,
  'authorizeSubscribe' | 'authorizeForward'
> & {
  subscribed(subs: Subscription[], client: Client | null): void;
  acked(packet: PublishPacket | PubrelPacket | null, client: Client | null): void;
} {
  const { sessions, logger } = deps;
  /** Tells BrokerRoutes.onDelivered that `packet` reached the device behind `client`. */
  function delivered(client: Client, packet: PublishPacket): void {
    const state = sessions.get(client);
    const onDelivered = deps.onDelivered();
    if (!state || !onDelivered) return;
    const prefix = `devices/${state.session.deviceId}/`;
    if (!packet.topic.startsWith(prefix)) return;
    try {
      onDelivered(
        state.session.deviceId,
        packet.topic.slice(prefix.length),
        Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload),
      );
    } catch (err) {
      deps.guard.hookFailed('delivered', state.session.deviceId, err);
    }
  }
  return {
    authorizeSubscribe(client, sub, done) {
      let decision: ReturnType<typeof authorizeDeviceSubscribe>;
      try {
        const state = sessions.get(client);
        decision = state
          ? authorizeDeviceSubscribe(state.session.deviceId, sub.topic)
          : { ok: false, reason: 'not_own_topic' };
        if (!decision.ok) {
          deps.counters.subscribesDenied++;
          deps.refusals.record('security.subscribe_denied', client, decision.reason, sub.topic);
        }
      } catch (err) {
        deps.refusals.hookFailed('authorizeSubscribe', client, err);
        return done(null, null);
      }
      if (!decision.ok) return done(null, null); // SUBACK 0x80 for this filter [MQTT-3.9.3-2]; the session stays
      done(null, { ...sub, qos: Math.min(sub.qos, 1) as 0 | 1 });
    },
    authorizeForward(client, packet) {
      try {
        const state = sessions.get(client);
        if (!state || !mayForward(state.session.deviceId, packet.topic)) return null;
        // A command queued for an offline session is never delivered after its expiry (ADR 0013).
        if (isExpiredCommand(packet.topic, packet.payload, Date.now())) return null;
        // A clean session keeps no outgoing packets, so Aedes' `ack` carries nothing for it: the
        // closest proof is this, the packet written now to the device's live, subscribed session.
        if (client.clean && packet.qos > 0) delivered(client, packet);
        return packet;
      } catch (err) {
        deps.guard.hookFailed('authorizeForward', sessions.get(client)?.session.deviceId, err);
        return null;
      }
    },
    subscribed(subs, client) {
      const state = client ? sessions.get(client) : undefined;
      const onSubscribed = deps.onSubscribed();
      if (!state || !onSubscribed) return;
      const prefix = `devices/${state.session.deviceId}/`;
      // Aedes has stored the subscriptions by now: a message published from here on is delivered.
      // A refused filter comes with qos 128 (its SUBACK code), whatever the typings say.
      const suffixes = subs
        .filter((s) => (s.qos as number) !== 128 && s.topic.startsWith(prefix))
        .map((s) => s.topic.slice(prefix.length));
      if (suffixes.length === 0) return;
      try {
        onSubscribed(state.session.deviceId, suffixes);
      } catch (err) {
        logger.error({ err, deviceId: state.session.deviceId }, 'a subscription listener failed');
      }
    },
    /**
     * Aedes' `ack` event: the device's PUBACK for a QoS 1 message it was sent [MQTT-4.3.2-2]
     * (emitted after Aedes matched it to its outgoing packet). The only proof a downstream message
     * reached the device: a publish to an offline device is dropped or queued, not delivered.
     */
    acked(packet, client) {
      if (client && packet && 'topic' in packet) delivered(client, packet);
    },
  };
}
