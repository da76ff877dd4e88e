import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import type { ApiClient } from './api-client.ts';
import { backoffDelay, DEVICE_BACKOFF } from './backoff.ts';
import { deviceKeyAndCsr, keyTypeOf, type DeviceKeyType } from './keys.ts';
import { openOutbox, type Outbox, type OutboxEntry } from './outbox.ts';
import { createFirmwareUpdater } from './firmware-updater.ts';
import { createDeviceAgent, startSampling, type AgentConfig } from './device-agent.ts';

/**
 * One simulated sensor doing what a real one does: its own key and CSR, enrolment with a one-time
 * token, an mTLS session as itself, QoS 1 publishes from an on-disk outbox (deleted on PUBACK),
 * the backlog uploaded in batches after an outage, reconnection with jittered backoff.
 */
export interface DeviceIdentity {
  id: string;
  kind: 'biodigester' | 'collection_point';
  key: string;
  cert: string;
  serial: string;
}

export interface DeviceStats {
  sent: number;
  acked: number;
  /** (ts) of every acknowledged reading, for the check against the database. */
  ackedTs: string[];
  errors: Record<string, number>;
  connects: number;
  refused: number;
}

/** Registers and enrols the device the first time (a key of `keyType`); afterwards reuses what is on disk. */
export async function loadOrEnrol(
  dir: string,
  id: string,
  kind: DeviceIdentity['kind'],
  where: { site: string; unit: string },
  api: ApiClient,
  keyType: DeviceKeyType = 'ec',
): Promise<DeviceIdentity> {
  const file = path.join(dir, 'identity.json');
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as DeviceIdentity;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await api.registerDevice({ id, unit: where.unit, site: where.site });
  const { key, csr } = deviceKeyAndCsr(id, keyType);
  const issued = await api.enroll(await api.enrolmentToken(id), csr);
  const identity: DeviceIdentity = {
    id,
    kind,
    key,
    cert: issued.certificate,
    serial: issued.serial,
  };
  await writeFile(file, JSON.stringify(identity), { mode: 0o600 });
  return identity;
}

export async function startDevice(o: {
  identity: DeviceIdentity;
  dir: string;
  url: string;
  ca: string;
  rand: () => number;
  onError?: (code: string) => void;
  /** Renew over MQTT when the certificate has fewer days than this left (the server's window is 30). */
  renewWithinDays?: number;
  /** The firmware-signing public key: with it the device takes signed firmware updates. */
  firmwareKeyPem?: string;
  /** With it the device measures by itself on its configured interval (remote configuration). */
  sample?: () => Record<string, number | boolean>;
  /** Real milliseconds per configured second (default 1000). */
  secondMs?: number;
  /** The first reading this long after start (ms), so that a fleet spreads over the interval. */
  firstSampleInMs?: number;
  /** A reason to refuse a configuration (tests). */
  refuseConfig?: (config: AgentConfig) => string | undefined;
}) {
  const outbox: Outbox = await openOutbox(path.join(o.dir, 'outbox'));
  const seqFile = path.join(o.dir, 'seq');
  let seq = existsSync(seqFile) ? Number(await readFile(seqFile, 'utf8')) : 0;
  const stats: DeviceStats = {
    sent: 0,
    acked: 0,
    ackedTs: [],
    errors: {},
    connects: 0,
    refused: 0,
  };
  let client: MqttClient | undefined;
  let stopped = false;
  let attempt = 0;
  let flushing = false;
  let identity = o.identity;
  let renewing = false;
  const renewals = { requested: 0, completed: 0, refused: [] as string[] };
  const versionFile = path.join(o.dir, 'firmware-version');
  let firmwareVersion = existsSync(versionFile)
    ? (await readFile(versionFile, 'utf8')).trim()
    : '1.0.0';
  const state = (payload: Record<string, unknown>): Promise<void> =>
    client?.connected
      ? client
          .publishAsync(`devices/${identity.id}/state`, JSON.stringify(payload), { qos: 1 })
          .then(() => undefined)
      : Promise.resolve();
  const updater = o.firmwareKeyPem
    ? createFirmwareUpdater({
        deviceId: o.identity.id,
        publicKeyPem: o.firmwareKeyPem,
        get tls() {
          return { key: identity.key, cert: identity.cert, ca: o.ca };
        },
        state,
        async install(version) {
          firmwareVersion = version;
          await writeFile(versionFile, version);
        },
      })
    : undefined;

  const startedAt = Date.now();
  /** Readings still held after their PUBACK, for `resend` (the newest 10,000). */
  const recent: OutboxEntry[] = [];
  /** Which configuration version made each reading (ts → version), for the MRV check. */
  const producedBy = new Map<string, number>();
  /**
   * What the agent says (configuration acknowledgements, command results) is held until it is
   * acknowledged: while offline, or when the connection drops before its PUBACK, it waits for
   * the next connection instead of being lost (a result made while the device was cut off, e.g.
   * during a long resend, used to vanish and leave its command "sent" until it expired).
   */
  const held: { topic: string; body: string; done: () => void }[] = [];
  const sendHeld = (c: MqttClient): void => {
    for (const m of held.splice(0)) {
      // Not acknowledged (the connection went): held for the next connection's sendHeld, never
      // retried here (a client that refuses at once would spin).
      c.publishAsync(m.topic, m.body, { qos: 1 }).then(m.done, () => held.push(m));
    }
  };
  const agent = await createDeviceAgent({
    dir: o.dir,
    publish: (suffix, payload) =>
      new Promise<void>((done) => {
        held.push({
          topic: `devices/${identity.id}/${suffix}`,
          body: JSON.stringify(payload),
          done,
        });
        if (client?.connected) sendHeld(client);
      }),
    reboot: () => void client?.endAsync(true).catch(() => undefined),
    async resend(since) {
      const again = recent.filter((r) => Date.parse(r.ts) >= since.getTime());
      for (const r of again) await outbox.add(r);
      void flush();
      return again.length;
    },
    diagnostics: async () => ({
      uptimeS: Math.round((Date.now() - startedAt) / 1000),
      connects: stats.connects,
      outboxPending: await outbox.size(),
      firmware: firmwareVersion,
    }),
    ...(o.refuseConfig ? { refuse: o.refuseConfig } : {}),
  });

  const connect = (): void => {
    if (stopped) return;
    const c = mqtt.connect(o.url, {
      key: identity.key,
      cert: identity.cert,
      ca: o.ca,
      clientId: identity.id,
      protocolVersion: 4,
      clean: false,
      keepalive: 60,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
    });
    client = c;
    c.on('connect', () => {
      stats.connects++;
      attempt = 0;
      c.subscribe(
        [
          `devices/${identity.id}/errors`,
          `devices/${identity.id}/cert/issued`,
          ...(updater ? [`devices/${identity.id}/firmware/manifest`] : []),
          `devices/${identity.id}/config`,
          `devices/${identity.id}/commands`,
        ],
        { qos: 1 },
      );
      c.publish(`devices/${identity.id}/state`, JSON.stringify({ firmware: firmwareVersion }), {
        qos: 1,
      });
      void flush();
      sendHeld(c);
      maybeRenew(c);
    });
    c.on('message', (topic, payload) => {
      if (topic.endsWith('/cert/issued')) return void onIssued(c, payload);
      if (topic.endsWith('/firmware/manifest')) return void updater?.handle(payload);
      if (topic.endsWith('/config')) return void agent.onConfig(payload).catch(() => undefined);
      if (topic.endsWith('/commands')) return void agent.onCommand(payload).catch(() => undefined);
      try {
        const msg = JSON.parse(payload.toString()) as { reasons?: { code: string }[] };
        for (const r of msg.reasons ?? []) {
          stats.errors[r.code] = (stats.errors[r.code] ?? 0) + 1;
          o.onError?.(r.code);
        }
      } catch {
        /* not ours to judge */
      }
    });
    c.on('error', (err: Error & { code?: number }) => {
      if (typeof err.code === 'number') stats.refused++; // CONNACK refusal
    });
    c.on('close', () => {
      if (client !== c) return;
      client = undefined;
      if (!stopped) setTimeout(connect, backoffDelay(attempt++, o.rand, DEVICE_BACKOFF));
    });
  };

  let pendingKey: string | undefined;
  /** Inside the renewal window: a new key (of the type it had) and CSR, sent over the current session. */
  function maybeRenew(c: MqttClient): void {
    const notAfter = new Date(new X509Certificate(identity.cert).validTo).getTime();
    if (renewing || notAfter - Date.now() > (o.renewWithinDays ?? 30) * 86_400_000) return;
    renewing = true;
    renewals.requested++;
    const { key, csr } = deviceKeyAndCsr(identity.id, keyTypeOf(identity.key));
    pendingKey = key;
    c.publish(`devices/${identity.id}/cert/csr`, csr, { qos: 1 });
  }

  async function onIssued(c: MqttClient, payload: Buffer): Promise<void> {
    const reply = JSON.parse(payload.toString()) as {
      certificate?: string;
      serial?: string;
      error?: { code: string };
    };
    renewing = false;
    if (!reply.certificate || !reply.serial || !pendingKey) {
      renewals.refused.push(reply.error?.code ?? 'UNKNOWN');
      return;
    }
    identity = { ...identity, key: pendingKey, cert: reply.certificate, serial: reply.serial };
    pendingKey = undefined;
    await writeFile(path.join(o.dir, 'identity.json'), JSON.stringify(identity), { mode: 0o600 });
    renewals.completed++;
    // Reconnect with the new certificate; the old one stays valid for the server's overlap.
    c.end(true);
  }

  /** Uploads the backlog: one reading alone, several as batches of up to 500. */
  async function flush(): Promise<void> {
    if (flushing) return;
    flushing = true;
    try {
      while (client?.connected) {
        const pending = await outbox.pending(500);
        const c = client;
        if (pending.length === 0 || !c?.connected) break; // the connection may have gone while reading the disk
        const payload =
          pending.length === 1 ? JSON.stringify(pending[0]) : JSON.stringify({ batch: pending });
        stats.sent += pending.length;
        // A publish in flight when the connection drops never settles in MQTT.js: the close decides.
        let onClose: () => void = () => undefined;
        const closed = new Promise<boolean>((resolve) =>
          c.once('close', (onClose = () => resolve(false))),
        );
        const ok = await Promise.race([
          c.publishAsync(`devices/${identity.id}/telemetry`, payload, { qos: 1 }).then(
            () => true,
            () => false,
          ),
          closed,
        ]);
        c.off('close', onClose);
        if (!ok) break;
        await outbox.ack(pending.map((p) => p.seq));
        stats.acked += pending.length;
        for (const p of pending) stats.ackedTs.push(p.ts);
      }
    } finally {
      flushing = false;
    }
  }

  connect();
  const stopSampling = o.sample
    ? startSampling({
        intervalS: () => agent.config()?.reportingIntervalS ?? 300,
        secondMs: o.secondMs ?? 1000,
        firstInMs: o.firstSampleInMs ?? 0,
        sample: o.sample,
        record: (r, ts) => device.record(r, ts),
        notBefore: () => agent.appliedAtMs(),
        onChange: (l) => agent.onApplied(l),
      })
    : undefined;
  const device = {
    stats,
    renewals,
    firmware: { version: () => firmwareVersion, outcomes: updater?.outcomes ?? [] },
    get identity(): DeviceIdentity {
      return identity;
    },
    connected: (): boolean => client?.connected ?? false,
    /** Records a reading (outbox first), then tries to send. */
    async record(raw: OutboxEntry['readings'], ts = new Date()): Promise<void> {
      // Calibrated at once, with the configuration in force now (the caller stamped ts now).
      const readings = agent.calibrate(raw);
      producedBy.set(ts.toISOString(), agent.version());
      const entry = { seq: ++seq, ts: ts.toISOString(), readings };
      recent.push(entry);
      if (recent.length > 10_000) recent.shift();
      await writeFile(seqFile, String(seq));
      await outbox.add(entry);
      void flush();
    },
    /** A raw publish for fault injection (not in the outbox: nobody expects it to be stored). */
    raw(topic: string, payload: string | Buffer): void {
      client?.publish(topic, payload, { qos: 1 }, () => undefined);
    },
    /** Drop the connection as if the network went away (the device reconnects by itself). */
    drop(): void {
      client?.stream.destroy();
    },
    pendingCount: () => outbox.size(),
    agent,
    producedBy,
    /** Stops measuring (the connection and the outbox go on). */
    stopSampling: (): void => stopSampling?.(),
    async stop(): Promise<void> {
      stopped = true;
      stopSampling?.();
      await client?.endAsync(true).catch(() => undefined);
    },
  };
  return device;
}

export type SimDevice = Awaited<ReturnType<typeof startDevice>>;
