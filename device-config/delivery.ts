import type { Logger } from 'pino';
import type { DownstreamPublisher } from '../broker/types.ts';
import type { CommandService } from './command-service.ts';
import type { DeviceConfigService } from './config-service.ts';

/**
 * The gateway's downstream half (ADR 0013): sends the desired configuration on
 * `devices/{id}/config` and open commands on `devices/{id}/commands`, QoS 1, not retained, read
 * from PostgreSQL each time: when the device subscribes (after every connection, so a restarted
 * gateway or a device that was offline gets the current state) and when a change is committed
 * (pg_notify, from any process: API, CLI). A message may arrive twice; the device acts on a
 * version or a command id once (docs/device-contract.md).
 */
export function createConfigDelivery(deps: {
  config: Pick<DeviceConfigService, 'desiredMessage'>;
  commands: Pick<CommandService, 'open' | 'delivered' | 'sweep'>;
  publisher: DownstreamPublisher;
  logger: Logger;
}) {
  const { logger } = deps;

  async function sendConfig(deviceId: string): Promise<void> {
    const m = await deps.config.desiredMessage(deviceId);
    if (!m) return;
    await deps.publisher.publish(deviceId, 'config', JSON.stringify(m), { qos: 1 });
  }

  async function sendCommands(deviceId: string, id?: string): Promise<number> {
    const rows = await deps.commands.open(deviceId, id);
    for (const c of rows)
      await deps.publisher.publish(
        deviceId,
        'commands',
        JSON.stringify({
          id: c.id,
          command: c.command,
          params: c.params,
          expiresAt: c.expires_at.toISOString(),
        }),
        { qos: 1 },
      );
    return rows.length;
  }

  const failed = (what: string, deviceId: string) => (err: unknown) =>
    logger.error({ err, deviceId }, `could not send ${what}`);

  /**
   * At most one lookup a second per device and topic, whatever its SUBSCRIBE rate; one asked
   * for within the second runs at its end (trailing), so a quick reconnect misses nothing.
   */
  const last = new Map<string, number>();
  const queued = new Set<string>();
  function throttled(key: string, fn: () => void): void {
    const now = Date.now();
    const since = now - (last.get(key) ?? 0);
    if (since >= 1000) {
      if (last.size >= 10_000) last.clear();
      last.set(key, now);
      return fn();
    }
    if (queued.has(key)) return;
    queued.add(key);
    setTimeout(() => {
      queued.delete(key);
      last.set(key, Date.now());
      fn();
    }, 1000 - since).unref();
  }

  return {
    sendConfig,
    sendCommands,
    /** BrokerRoutes.onSubscribed: whatever the device subscribed to goes out now. */
    onSubscribed(deviceId: string, suffixes: string[]): void {
      if (suffixes.includes('config'))
        throttled(
          `${deviceId}/config`,
          () => void sendConfig(deviceId).catch(failed('the desired configuration', deviceId)),
        );
      if (suffixes.includes('commands'))
        throttled(
          `${deviceId}/commands`,
          () => void sendCommands(deviceId).catch(failed('pending commands', deviceId)),
        );
    },
    /**
     * BrokerRoutes.onDelivered: the device's PUBACK for a command is what makes it `sent`
     * (publishing to an offline device reaches nobody; ADR 0013).
     */
    onDelivered(deviceId: string, suffix: string, payload: Buffer): void {
      if (suffix !== 'commands') return;
      let id: unknown;
      try {
        id = (JSON.parse(payload.toString('utf8')) as { id?: unknown }).id;
      } catch {
        return; // not one of ours: the gateway only sends JSON here
      }
      if (typeof id !== 'string') return;
      deps.commands
        .delivered(deviceId, id)
        .catch((err: unknown) =>
          logger.error(
            { err, deviceId },
            'could not store a command as delivered: it stays pending',
          ),
        );
    },
    /** device events (pg_notify): a change committed anywhere. */
    configChanged(e: { deviceId: string }): void {
      void sendConfig(e.deviceId).catch(failed('the desired configuration', e.deviceId));
    },
    commandCreated(e: { deviceId: string; commandId: string }): void {
      void sendCommands(e.deviceId, e.commandId).catch(failed('a command', e.deviceId));
    },
    /** Commands past their time-out are stored as timed out. */
    async tick(): Promise<void> {
      try {
        const rows = await deps.commands.sweep();
        if (rows.length > 0)
          logger.info({ commands: rows.map((r) => r.id) }, 'device commands timed out');
      } catch (err) {
        logger.error({ err }, 'command time-out sweep failed');
      }
    },
  };
}

export type ConfigDelivery = ReturnType<typeof createConfigDelivery>;
