import { z } from 'zod';
import type { AuditActor, AuditLog } from '../audit/index.ts';
import type { Db } from '../db/client.ts';
import { asQueryable, type DbExecutor } from '../db/scoped.ts';
import type { Queryable } from '../db/timeseries.ts';
import { notifyDeviceEvent } from '../devices/device-events.ts';
import { commandNames, type CommandResult } from './config-fns.ts';
import { ConfigErrors } from './config-errors.ts';
import { configRepo, type CommandRow } from './config-repo.ts';

/** What a command asks for; `resend` needs the instant to re-send from. */
export const commandInput = z.discriminatedUnion('command', [
  z.strictObject({
    command: z.literal('reboot'),
    timeoutS: z
      .number()
      .int()
      .min(10)
      .max(7 * 86_400)
      .default(3600),
  }),
  z.strictObject({
    command: z.literal('resend'),
    since: z.iso.datetime({ offset: true }),
    timeoutS: z
      .number()
      .int()
      .min(10)
      .max(7 * 86_400)
      .default(3600),
  }),
  z.strictObject({
    command: z.literal('diagnostics'),
    timeoutS: z
      .number()
      .int()
      .min(10)
      .max(7 * 86_400)
      .default(3600),
  }),
]);
export type CommandInput = z.input<typeof commandInput>;

export type ResultRefusal = 'COMMAND_UNKNOWN' | 'COMMAND_CLOSED';

/**
 * Commands to one device (reboot, re-send readings since an instant, diagnostics): each with a
 * correlation id (the row's uuid), a time-out and a stored result (ok, error, timed_out). A
 * command waits for an offline device until it expires and is never delivered after that
 * (device-config/delivery.ts, broker/subscribe-hooks.ts). Audited with before and after.
 */
export function createCommandService(deps: {
  db: Db;
  audit: Pick<AuditLog, 'record'>;
  now?: () => Date;
}) {
  const now = deps.now ?? (() => new Date());
  const inTx = <T>(fn: (tx: DbExecutor, q: Queryable) => Promise<T>): Promise<T> =>
    deps.db.transaction((tx) => fn(tx, asQueryable(tx)));

  return {
    async create(deviceId: string, input: unknown, actor: AuditActor): Promise<CommandRow> {
      const parsed = commandInput.safeParse(input);
      if (!parsed.success)
        throw new ConfigErrors.CommandInvalid(
          `${parsed.error.issues[0]?.path.join('.') || 'command'}: ${parsed.error.issues[0]?.message ?? 'invalid'} (one of ${commandNames.join(', ')})`,
        );
      const c = parsed.data;
      return inTx(async (tx, q) => {
        if (!(await configRepo.device(q, deviceId)))
          throw new ConfigErrors.DeviceNotFound(deviceId);
        const params = c.command === 'resend' ? { since: new Date(c.since).toISOString() } : {};
        const row = await configRepo.insertCommand(q, {
          deviceId,
          command: c.command,
          params,
          expiresAt: new Date(now().getTime() + c.timeoutS * 1000),
          by: actor.actorId,
        });
        await deps.audit.record(
          {
            ...actor,
            action: 'device.command_created',
            targetType: 'device',
            targetId: deviceId,
            before: null,
            after: {
              id: row.id,
              command: row.command,
              params,
              status: row.status,
              expiresAt: row.expires_at.toISOString(),
            },
          },
          tx,
        );
        await notifyDeviceEvent(tx, { type: 'command_created', deviceId, commandId: row.id });
        return row;
      });
    },

    async list(deviceId: string, limit = 20): Promise<CommandRow[]> {
      const q = asQueryable(deps.db);
      if (!(await configRepo.device(q, deviceId))) throw new ConfigErrors.DeviceNotFound(deviceId);
      return configRepo.commands(q, deviceId, limit);
    },

    async get(id: string): Promise<CommandRow> {
      const row = await configRepo.command(asQueryable(deps.db), id);
      if (!row) throw new ConfigErrors.CommandNotFound(id);
      return row;
    },

    /** The gateway: unanswered, unexpired commands to send now (all, or one); they stay `pending`. */
    open(deviceId: string, id?: string): Promise<CommandRow[]> {
      return configRepo.open(asQueryable(deps.db), deviceId, now(), id);
    },

    /**
     * The broker saw the device's PUBACK for this command: it is `sent` (delivered). Until then it
     * is `pending`, however often it was published: a device that is offline receives nothing.
     * A malformed id or another device's command changes nothing.
     */
    async delivered(deviceId: string, id: string): Promise<boolean> {
      if (!z.uuid().safeParse(id).success) return false;
      return (await configRepo.markSent(asQueryable(deps.db), deviceId, id, now())).length > 0;
    },

    /**
     * `devices/{id}/commands/result`, matched by correlation id. A result for another device's
     * command or an unknown id is refused (`COMMAND_UNKNOWN`); one for a command already
     * answered or timed out (`COMMAND_CLOSED`) changes nothing. Stored and audited as the device.
     */
    async result(
      deviceId: string,
      r: CommandResult,
      receivedAt: Date,
    ): Promise<{ ok: true } | { ok: false; code: ResultRefusal; message: string }> {
      return inTx(async (tx, q) => {
        const row = await configRepo.command(q, r.id, true);
        // Someone else's command answers exactly like an unknown one: nothing about it leaks.
        if (!row || row.device_id !== deviceId)
          return {
            ok: false,
            code: 'COMMAND_UNKNOWN',
            message: `no command ${r.id} for this device`,
          };
        const open = row.status === 'pending' || row.status === 'sent';
        // Past its time-out it is timed out, answered or not (the sweep stores and audits that).
        if (open && row.expires_at.getTime() <= receivedAt.getTime())
          return { ok: false, code: 'COMMAND_CLOSED', message: `command ${r.id} timed out` };
        if (!open)
          return {
            ok: false,
            code: 'COMMAND_CLOSED',
            message: `command ${r.id} is already ${row.status}`,
          };
        await configRepo.complete(
          q,
          row.id,
          r.status,
          r.result ?? null,
          r.error ?? null,
          receivedAt,
        );
        await deps.audit.record(
          {
            actorId: `device:${deviceId}`,
            actorRole: 'device',
            action: 'device.command_result',
            targetType: 'device',
            targetId: deviceId,
            before: { id: row.id, command: row.command, status: row.status },
            after: {
              id: row.id,
              command: row.command,
              status: r.status,
              result: r.result ?? null,
              error: r.error ?? null,
            },
          },
          tx,
        );
        return { ok: true };
      });
    },

    /** Unanswered commands past their time-out become `timed_out` (audited as system). */
    async sweep(): Promise<CommandRow[]> {
      return inTx(async (tx, q) => {
        const rows = await configRepo.timeOut(q, now());
        for (const row of rows)
          await deps.audit.record(
            {
              actorId: 'system',
              actorRole: 'system',
              action: 'device.command_timed_out',
              targetType: 'device',
              targetId: row.device_id,
              before: {
                id: row.id,
                command: row.command,
                status: row.sent_at ? 'sent' : 'pending',
              },
              after: { id: row.id, command: row.command, status: 'timed_out' },
            },
            tx,
          );
        return rows;
      });
    },
  };
}

export type CommandService = ReturnType<typeof createCommandService>;
