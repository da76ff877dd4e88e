import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The device side of remote configuration and commands (docs/device-contract.md,
 * "Configuration" and "Commands"), as firmware does it: apply a configuration version once,
 * newer than the one it runs, keep it across restarts (on disk), acknowledge it with the instant
 * from which its readings use it; run each command id once, never after its expiry, and answer
 * with its correlation id.
 */

export interface AgentConfig {
  reportingIntervalS: number;
  calibration: Record<string, { offset: number; gain: number }>;
  alarms: Record<string, { min?: number; max?: number }>;
  timeSyncServer: string;
}

export interface AgentDeps {
  dir: string;
  /** Publishes `devices/{id}/{suffix}` with QoS 1 and resolves on its PUBACK. */
  publish(suffix: string, payload: Record<string, unknown>): Promise<void>;
  /** Reboots: the connection is closed and made again. */
  reboot(): void;
  /** Re-sends the readings it still has from `since` on; how many. */
  resend(since: Date): Promise<number>;
  diagnostics(): Promise<Record<string, unknown>> | Record<string, unknown>;
  /** A test's hook: a reason to refuse this configuration (undefined: apply it). */
  refuse?: (config: AgentConfig) => string | undefined;
  now?: () => number;
}

export async function createDeviceAgent(deps: AgentDeps) {
  const now = deps.now ?? Date.now;
  const file = path.join(deps.dir, 'config.json');
  const saved = existsSync(file)
    ? (JSON.parse(await readFile(file, 'utf8')) as { version: number; config: AgentConfig })
    : undefined;
  let version = saved?.version ?? 0;
  let config = saved?.config;
  let appliedAtMs = 0;
  const done = new Set<string>();
  const listeners = new Set<(version: number) => void>();
  const outcomes = { applied: [] as number[], rejected: [] as number[], commands: [] as string[] };

  function valid(c: unknown): c is AgentConfig {
    const x = c as Partial<AgentConfig> | undefined;
    return (
      !!x &&
      Number.isInteger(x.reportingIntervalS) &&
      typeof x.timeSyncServer === 'string' &&
      typeof x.calibration === 'object' &&
      typeof x.alarms === 'object'
    );
  }

  async function onConfig(payload: Buffer): Promise<void> {
    let msg: { version?: unknown; config?: unknown };
    try {
      msg = JSON.parse(payload.toString()) as typeof msg;
    } catch {
      return;
    }
    const v = msg.version;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < version) return; // older: ignore
    if (v === version) {
      // Sent again (a reconnect, a restarted gateway): the acknowledgement may have been lost.
      if (config)
        await deps.publish('config/reported', {
          version: v,
          status: 'applied',
          ...(appliedAtMs > 0 ? { appliedAt: new Date(appliedAtMs).toISOString() } : {}),
        });
      return;
    }
    const reason = !valid(msg.config)
      ? 'not a configuration this firmware understands'
      : deps.refuse?.(msg.config);
    if (reason || !valid(msg.config)) {
      outcomes.rejected.push(v);
      await deps.publish('config/reported', {
        version: v,
        status: 'rejected',
        reason: reason ?? 'invalid',
      });
      return;
    }
    const appliedAt = new Date(now());
    appliedAtMs = appliedAt.getTime();
    config = msg.config;
    version = v;
    await writeFile(file, JSON.stringify({ version, config }));
    outcomes.applied.push(v);
    for (const l of listeners) l(v);
    await deps.publish('config/reported', {
      version: v,
      status: 'applied',
      appliedAt: appliedAt.toISOString(),
    });
  }

  async function onCommand(payload: Buffer): Promise<void> {
    let c: { id?: unknown; command?: unknown; params?: { since?: unknown }; expiresAt?: unknown };
    try {
      c = JSON.parse(payload.toString()) as typeof c;
    } catch {
      return;
    }
    if (typeof c.id !== 'string' || done.has(c.id)) return; // once per correlation id
    if (typeof c.expiresAt !== 'string' || Date.parse(c.expiresAt) <= now()) return; // too late
    done.add(c.id);
    outcomes.commands.push(`${String(c.command)}:${c.id}`);
    const answer = (status: 'ok' | 'error', extra: Record<string, unknown>) =>
      deps.publish('commands/result', { id: c.id, status, ...extra });
    switch (c.command) {
      case 'reboot':
        // Answer first (and wait for its PUBACK), then go down: the result would be lost otherwise.
        await answer('ok', { result: { rebooting: true } });
        deps.reboot();
        return;
      case 'resend': {
        const since = typeof c.params?.since === 'string' ? new Date(c.params.since) : undefined;
        if (!since || Number.isNaN(since.getTime()))
          return answer('error', { error: 'resend needs params.since' });
        return answer('ok', { result: { resent: await deps.resend(since) } });
      }
      case 'diagnostics':
        return answer('ok', { result: { ...(await deps.diagnostics()), configVersion: version } });
      default:
        return answer('error', { error: `unknown command ${String(c.command)}` });
    }
  }

  return {
    onConfig,
    onCommand,
    outcomes,
    version: (): number => version,
    appliedAtMs: (): number => appliedAtMs,
    config: (): AgentConfig | undefined => config,
    /** value × gain + offset, per metric, with the calibration in force. */
    calibrate(readings: Record<string, number | boolean>): Record<string, number | boolean> {
      const cal = config?.calibration ?? {};
      return Object.fromEntries(
        Object.entries(readings).map(([m, v]) => {
          const c = cal[m];
          return [
            m,
            typeof v === 'number' && c ? Math.round((v * c.gain + c.offset) * 1e6) / 1e6 : v,
          ];
        }),
      );
    },
    /** Called with each version applied. */
    onApplied(listener: (version: number) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export type DeviceAgent = Awaited<ReturnType<typeof createDeviceAgent>>;

/**
 * Readings on the configured interval, stamped with their scheduled instant (as a device's RTC
 * alarm does): the gaps between stored readings are exactly the interval in force, however late
 * the machine runs the timer. `secondMs`: real milliseconds per configured second (tests run
 * faster than life).
 */
export function startSampling(o: {
  intervalS: () => number;
  secondMs: number;
  /** The first reading this long from now (ms; default at once). */
  firstInMs?: number;
  sample: () => Record<string, number | boolean>;
  record: (readings: Record<string, number | boolean>, ts: Date) => Promise<void>;
  /** When the configuration in force was applied (ms): no reading made with it is stamped earlier. */
  notBefore: () => number;
  /** Restarts the schedule at once, from the next reading on (a new interval applied). */
  onChange: (listener: () => void) => void;
}): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let next = Date.now() + (o.firstInMs ?? 0);
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(tick, Math.max(0, next - Date.now()));
  };
  const tick = (): void => {
    // Never stamped before the configuration it is calibrated with was applied.
    const ts = new Date(Math.max(next, o.notBefore()));
    next += o.intervalS() * o.secondMs;
    void o.record(o.sample(), ts).catch(() => undefined);
    schedule();
  };
  o.onChange(() => {
    clearTimeout(timer);
    next = Date.now() + o.intervalS() * o.secondMs;
    schedule();
  });
  schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
