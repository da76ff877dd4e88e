import { createRequire } from 'node:module';
import mqemitter from 'mqemitter';

// aedes-persistence is CommonJS whose type declarations describe an ES default export; load it as
// Aedes does at run time (module.exports is the factory) and type the part used here.
const memoryPersistence = createRequire(import.meta.url)('aedes-persistence') as () => object;

/**
 * Aedes routes every publish it acknowledges (aedes.js, `publishFuncsQoS`): it asks the
 * persistence which offline sessions subscribe to the topic (`enqueueOffline`) and hands the
 * packet to live subscribers (`emitPacket`): two topic-trie matches and a promise per message.
 * Telemetry has no subscriber: devices may subscribe to their own downstream topics only
 * (topic-policy.ts) and nothing in the gateway listens to it (ingest takes it in
 * `authorizePublish`, ADR 0003). These wrappers of Aedes' own defaults answer "nobody" for a
 * telemetry topic at once, until a subscription that could match one appears (an operator tool on
 * `devices/#`, say); from then on they route everything exactly as Aedes would.
 */

/** `devices/{id}/telemetry`, exactly three levels. */
export function isTelemetryTopic(topic: string): boolean {
  if (!topic.startsWith('devices/') || !topic.endsWith('/telemetry')) return false;
  const second = topic.indexOf('/', 8);
  return second > 8 && second === topic.length - 10;
}

/** Whether an MQTT filter [MQTT-4.7] could match some `devices/{id}/telemetry` topic. */
export function mayMatchTelemetry(filter: string): boolean {
  const levels = filter.split('/');
  const wants = ['devices', undefined, 'telemetry'] as const; // undefined: any device id
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level === '#') return true; // matches this level and everything below (and its parent)
    if (i >= wants.length) return false;
    if (level === '+' || wants[i] === undefined) continue;
    if (level !== wants[i]) return false;
  }
  return levels.length === wants.length;
}

type Listener = (message: mqemitter.Message, done: () => void) => void;
type Persistence = {
  subscriptionsByTopic(topic: string): Promise<unknown[]>;
  addSubscriptions(client: unknown, subs: { topic: string }[]): Promise<unknown>;
};

const NOBODY: Promise<unknown[]> = Promise.resolve([]);

export function createTelemetryRouting(opts: {
  concurrency: number;
  /** Another emitter and persistence than Aedes' in-memory defaults (mqemitter-redis and
   * aedes-persistence-redis when clustered: broker/cluster.ts). */
  store?: { mq: mqemitter.MQEmitter; persistence: object };
}) {
  let bypass = true;
  const watch = (filter: string): void => {
    if (bypass && mayMatchTelemetry(filter)) bypass = false;
  };

  // Aedes' default: mqemitter({ concurrency, matchEmptyLevels: true }) [MQTT-4.7.1-3].
  const real =
    opts.store?.mq ?? mqemitter({ concurrency: opts.concurrency, matchEmptyLevels: true });
  const mq = {
    get current() {
      return real.current;
    },
    get concurrent() {
      return real.concurrent;
    },
    on(topic: string, listener: Listener, callback?: () => void) {
      watch(topic);
      real.on(topic, listener, callback);
      return mq;
    },
    removeListener(topic: string, listener: Listener, callback?: () => void): void {
      real.removeListener(topic, listener, callback);
    },
    emit(message: mqemitter.Message, callback?: (error?: Error) => void): void {
      if (bypass && isTelemetryTopic(message.topic)) {
        callback?.();
        return;
      }
      real.emit(message, callback);
    },
    close(callback: () => void): void {
      real.close(callback);
    },
  };

  // Aedes' default persistence (or Redis's, same callback-or-promise wrapper), used through its
  // promise interface (Aedes 1.x).
  const persistence = (opts.store?.persistence ?? memoryPersistence()) as Persistence;
  const byTopic = persistence.subscriptionsByTopic.bind(persistence);
  const addSubscriptions = persistence.addSubscriptions.bind(persistence);
  persistence.subscriptionsByTopic = (topic: string) =>
    bypass && isTelemetryTopic(topic) ? NOBODY : byTopic(topic);
  persistence.addSubscriptions = (client: unknown, subs: { topic: string }[]) => {
    for (const s of subs) watch(s.topic);
    return addSubscriptions(client, subs);
  };

  return { mq, persistence, bypassing: (): boolean => bypass };
}
