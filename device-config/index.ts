import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import { createDeviceConfigHandlers } from '../broker/device-config-handler.ts';
import type { DownstreamPublisher } from '../broker/types.ts';
import type { Db } from '../db/client.ts';
import type { DeviceEvents } from '../devices/device-events.ts';
import { createCommandService } from './command-service.ts';
import { createDeviceConfigService } from './config-service.ts';
import { createConfigDelivery } from './delivery.ts';

export {
  calibrationHistory,
  createDeviceConfigService,
  type DeviceConfigService,
} from './config-service.ts';
export { createCommandService, type CommandService } from './command-service.ts';
export { createConfigDelivery, type ConfigDelivery } from './delivery.ts';
export * from './config-fns.ts';

/**
 * Remote configuration and commands in the gateway: the services on the owner's pool, the
 * upstream handlers (config/reported, commands/result), delivery at subscribe and on every
 * committed change (pg_notify), and the time-out sweep.
 */
export function createDeviceConfigRuntime(deps: {
  db: Db;
  audit: Pick<AuditLog, 'record'>;
  publisher: DownstreamPublisher;
  events: Pick<DeviceEvents, 'on'>;
  logger: Logger;
  lifecycle?: { onStop(name: string, fn: () => unknown): void };
  sweepMs?: number;
}) {
  const config = createDeviceConfigService({ db: deps.db, audit: deps.audit });
  const commands = createCommandService({ db: deps.db, audit: deps.audit });
  const delivery = createConfigDelivery({
    config,
    commands,
    publisher: deps.publisher,
    logger: deps.logger,
  });
  deps.events.on('config_changed', (e) => delivery.configChanged(e));
  deps.events.on('command_created', (e) => delivery.commandCreated(e));
  const timer = setInterval(() => void delivery.tick(), deps.sweepMs ?? 15_000);
  timer.unref();
  deps.lifecycle?.onStop('device-commands', () => clearInterval(timer));
  const handlers = createDeviceConfigHandlers({
    publisher: deps.publisher,
    logger: deps.logger,
    reports: config,
    results: commands,
  });
  return { config, commands, delivery, handlers, stop: () => clearInterval(timer) };
}

export type DeviceConfigRuntime = ReturnType<typeof createDeviceConfigRuntime>;
