import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ConnectVerdict } from './device-limits.ts';

/**
 * The CONNECT budget per device (MQTT_DEVICE_CONNECTS_MAX per window) across every node of a
 * cluster: a sliding window in one Redis sorted set per device, checked and counted in one
 * script (atomic: two nodes admitting the same device at once cannot both take the last place),
 * on Redis's clock (nodes' clocks may differ). Without it a device cycling through N nodes behind
 * the load balancer would get N budgets.
 *
 * The local budget (device-limits.ts) is checked first: a CONNECT flood is refused without a
 * round trip. If Redis does not answer within `timeoutMs`, the local verdict stands (the node
 * keeps working without Redis: ADR 0010).
 *
 * The publish rate stays per node: a device has one live session in the whole cluster (a
 * connect elsewhere closes the old one [MQTT-3.1.4-2]), so its publishes all meet one node's
 * bucket; moving to another node to find a full bucket costs a CONNECT, which this budget bounds.
 */
const SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
`;

export function createSharedConnectLimits(deps: {
  redis: Pick<Redis, 'eval'>;
  connectsPerWindow: number;
  connectWindowMs: number;
  logger: Logger;
  timeoutMs?: number;
}) {
  let n = 0;
  return {
    async admitConnect(deviceId: string): Promise<ConnectVerdict> {
      const timeoutMs = deps.timeoutMs ?? 500;
      let timer: NodeJS.Timeout | undefined;
      try {
        const retryAfter = await Promise.race([
          deps.redis.eval(
            SCRIPT,
            1,
            `thamani:connects:${deviceId}`,
            deps.connectWindowMs,
            deps.connectsPerWindow,
            `${process.pid}.${n++}`,
          ) as Promise<number>,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error('Redis did not answer')), timeoutMs);
          }),
        ]);
        return retryAfter > 0 ? { ok: false, retryAfterMs: retryAfter } : { ok: true };
      } catch (err) {
        deps.logger.debug(
          { err, deviceId },
          'cluster CONNECT budget unavailable: local budget only',
        );
        return { ok: true };
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export type SharedConnectLimits = ReturnType<typeof createSharedConnectLimits>;
