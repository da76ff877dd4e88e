import type { AedesOptions } from 'aedes';
import type { Logger } from 'pino';
import type { BrokerConfig, BrokerCounters } from './broker-context.ts';
import type { DeviceLimits } from './device-limits.ts';
import { NotAcknowledged, type InputGuard } from './input-guard.ts';
import type { Presence } from './presence.ts';
import type { Refusals } from './refusals.ts';
import type { SessionRegistry } from './sessions.ts';
import { authorizeDevicePublish } from './topic-policy.ts';
import type {
  DeviceSession,
  UpstreamCallbackHandler,
  UpstreamHandler,
  UpstreamPublish,
} from './types.ts';

export interface PublishHookDeps {
  config: Pick<BrokerConfig, 'rateMaxWaitMs' | 'ratePerSecond'>;
  logger: Logger;
  sessions: Pick<SessionRegistry, 'get'>;
  limits: Pick<DeviceLimits, 'take' | 'refund'>;
  counters: Pick<BrokerCounters, 'publishesDenied' | 'rateLimited'>;
  refusals: Pick<Refusals, 'record'>;
  guard: Pick<InputGuard, 'failed' | 'hookFailed'>;
  /** The handler registered for a topic suffix (BrokerRoutes), if any. */
  handlerFor(suffix: string): UpstreamHandler | UpstreamCallbackHandler | undefined;
  presence?: Pick<Presence, 'seen'>;
}

/**
 * A device's PUBLISH: topic policy, rate limit, then its handler. Aedes writes the PUBACK when
 * `done` is called without an error, so `done` waits for the handler (the reading committed) and
 * for every earlier publish of the client (PUBACKs in order, broker/in-order.ts).
 */
export function createPublishHook(
  deps: PublishHookDeps,
): Required<AedesOptions>['authorizePublish'] {
  const { config, logger, counters, guard } = deps;

  /**
   * Hands a publish to its handler (a plain function: no closure per message on the hot path).
   * Whatever the handler does wrong, sync or async, ends in `finished` (input-guard.ts).
   */
  function runHandler(
    handler: UpstreamHandler | UpstreamCallbackHandler,
    session: DeviceSession,
    message: UpstreamPublish,
    finished: (err: unknown) => void,
  ): void {
    try {
      deps.presence?.seen(session.deviceId);
      if (typeof handler === 'function') {
        handler(session, message)
          .then(() => finished(null), finished)
          .catch((err: unknown) => guard.hookFailed('runHandler', session.deviceId, err));
        return;
      }
      handler.callback(session, message, finished);
    } catch (err) {
      finished(err);
    }
  }

  return function authorizePublish(client, packet, done) {
    const state = client ? deps.sessions.get(client) : undefined;
    if (!client || !state) return done(new Error('publish from an unauthenticated client'));
    // Every outcome, refusals too, waits for those of the client's earlier publishes.
    const acks = state.acks;
    const ticket = acks.open(done);
    let message: UpstreamPublish | undefined;
    let called = false;
    const finished = (err: unknown): void => {
      // A handler that calls back twice (or calls back, then throws) must not answer twice.
      if (called)
        return void logger.error(
          { err, deviceId: state.session.deviceId, topic: packet.topic },
          'upstream handler completed twice; ignored',
        );
      called = true;
      if (!err) return acks.settle(ticket, null);
      guard.failed(
        state.session,
        message ?? {
          topic: packet.topic,
          suffix: '',
          payload: packet.payload as Buffer,
          qos: packet.qos,
          receivedAt: new Date(),
        },
        err,
        (e) => acks.settle(ticket, e),
      );
    };
    try {
      const decision = authorizeDevicePublish(state.session.deviceId, packet);
      if (!decision.ok) {
        counters.publishesDenied++;
        deps.refusals.record('security.publish_denied', client, decision.reason, packet.topic, {
          qos: packet.qos,
          retain: packet.retain,
        });
        return finished(new NotAcknowledged(`publish refused: ${decision.reason}`));
      }
      const handler = deps.handlerFor(decision.suffix);
      if (!handler) return finished(new NotAcknowledged(`no handler for ${decision.suffix}`));
      const { waitMs: wait, overRateMs, flood } = deps.limits.take(state.session.deviceId);
      if (wait > config.rateMaxWaitMs || flood) {
        deps.limits.refund(state.session.deviceId);
        counters.rateLimited++;
        const reason = flood ? 'sustained_flood' : 'wait_too_long';
        deps.refusals.record('security.rate_limited', client, reason, packet.topic, {
          waitMs: Math.round(wait),
          overRateMs: Math.round(overRateMs),
          ratePerSecond: config.ratePerSecond,
        });
        return finished(new NotAcknowledged(`publish rate exceeded (${reason})`));
      }
      if (wait > 0 && !state.rateLimitedLogged) {
        state.rateLimitedLogged = true;
        logger.warn(
          { deviceId: state.session.deviceId, waitMs: Math.round(wait) },
          'device over its publish rate: acknowledgements slowed',
        );
      }
      message = {
        topic: packet.topic,
        suffix: decision.suffix,
        payload: packet.payload as Buffer,
        qos: packet.qos,
        receivedAt: new Date(),
      };
      // Behind a wait, a publish joins the session's queue (broker/pacer.ts): its handler runs
      // after those of the publishes before it, never before.
      const m = message;
      if (wait > 0 || state.pacer.waiting > 0)
        state.pacer.after(wait, () => runHandler(handler, state.session, m, finished));
      else runHandler(handler, state.session, message, finished);
    } catch (err) {
      finished(err);
    }
  };
}
