import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrokerFixture, type BrokerFixture, type DeviceCert } from '../test/broker-fixture.ts';
import { createApiHarness, createUserWithPassword, type ApiHarness } from '../test/api-harness.ts';
import { testLogger } from '../test/db.ts';
import { timeseriesInfo } from '../db/timeseries.ts';
import { createAlertService, type AlertService } from './alert-service.ts';
import { createDashboardQueries } from './dashboard-repo.ts';
import { dashboardRoutes } from './dashboard-routes.ts';
import { createLiveHub, type LiveEvent } from './live-hub.ts';
import { createWebhookDispatcher, signWebhook } from './webhook.ts';

/**
 * Alerts end to end: readings published over mTLS open, escalate and close alerts through the
 * hysteresis band; each transition reaches a webhook receiver, signed; a kitchen manager
 * acknowledges with a note (audited); the offline rule follows broker presence.
 */
const SECRET = 'alert webhook test secret';

let fx: BrokerFixture;
let api: ApiHarness;
let alerts: AlertService;
let device: MqttClient;
let cert: DeviceCert;
let clock = Date.now();
const hub = createLiveHub({ flushMs: 50 });
const live: LiveEvent[] = [];
const received: { event: string; signature: string; timestamp: string; body: string }[] = [];
let receiver: http.Server;
let webhook: ReturnType<typeof createWebhookDispatcher>;
let failNext = 0;

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      // The receiver fails the first delivery(ies) when asked: the outbox must retry.
      if (failNext > 0) {
        failNext--;
        res.writeHead(503).end();
        return;
      }
      received.push({
        event: String(req.headers['x-thamani-event']),
        signature: String(req.headers['x-thamani-signature']),
        timestamp: String(req.headers['x-thamani-timestamp']),
        body,
      });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  let evaluator: AlertService | undefined;
  fx = await startBrokerFixture({}, { ingest: {}, onStored: (rows) => evaluator?.stored(rows) });
  const pool = fx.t.database.pool;
  webhook = createWebhookDispatcher({
    pool,
    logger: testLogger,
    url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
    secret: SECRET,
    pollMs: 200,
  });
  alerts = evaluator = createAlertService({
    pool,
    logger: testLogger,
    hub,
    notify: true,
    onOutbox: () => webhook.kick(),
    now: () => new Date(clock),
  });
  await alerts.ensureDefaults();
  hub.subscribe({ visible: () => 'all', send: (e) => live.push(e) });
  const queries = createDashboardQueries({ mode: (await timeseriesInfo(pool)).mode });
  api = await createApiHarness(
    {
      routes: ({ audit, db, authenticator }) => [
        { plugin: dashboardRoutes({ db, audit, authenticator, queries, hub, alerts }) },
      ],
    },
    { t: fx.t },
  );
  cert = await fx.addDevice('bd-alert-1');
  device = await fx.connect(cert, { clientId: 'bd-alert-1' });
}, 120_000);

afterAll(async () => {
  await device?.endAsync(true);
  await webhook?.stop();
  await fx?.close();
  receiver?.close();
});

let seq = 1;
async function reading(values: Record<string, number>): Promise<void> {
  await device.publishAsync(
    'devices/bd-alert-1/telemetry',
    JSON.stringify({ seq: seq++, ts: new Date().toISOString(), readings: values }),
    { qos: 1 },
  );
  await alerts.settled();
}

async function rows() {
  const { rows } = await fx.t.database.pool.query<{
    id: string;
    rule_id: string;
    severity: string;
    status: string;
    open_value: number;
  }>(`SELECT id, rule_id, severity, status, open_value FROM alerts ORDER BY id`);
  return rows;
}

describe('alerts', () => {
  it('opens, escalates and closes through the hysteresis band, without flapping at the threshold', async () => {
    await reading({ temperature_c: 35 });
    expect(await rows()).toEqual([]);
    // Hovering around the 30 °C threshold: one alert, never closed (it clears only at 31 °C).
    for (const t of [29.9, 30.1, 29.9, 30.1, 29.95, 30.4]) await reading({ temperature_c: t });
    expect(await rows()).toEqual([
      expect.objectContaining({
        rule_id: 'biodigester.temperature_c.low',
        severity: 'warning',
        status: 'open',
        open_value: 29.9,
      }),
    ]);
    await reading({ temperature_c: 24 });
    expect((await rows())[0]).toMatchObject({ severity: 'critical', status: 'open' });
    await reading({ temperature_c: 30.9 });
    expect((await rows())[0]!.status).toBe('open');
    await reading({ temperature_c: 31.2 });
    expect((await rows())[0]!.status).toBe('closed');
    // Back between the thresholds after closing: nothing reopens.
    await reading({ temperature_c: 30.5 });
    expect(await rows()).toHaveLength(1);
    expect(
      live
        .filter((e) => e.type === 'alert')
        .map((e) => (e.type === 'alert' ? `${e.alert.status}/${e.alert.severity}` : '')),
    ).toEqual(['open/warning', 'open/critical', 'closed/critical']);
  });

  it('notifies the webhook of every transition, signed, retrying a failed delivery', async () => {
    await expect.poll(() => received.length).toBe(3);
    expect(received.map((r) => r.event)).toEqual([
      'alert.opened',
      'alert.escalated',
      'alert.closed',
    ]);
    for (const r of received) {
      expect(r.signature).toBe(signWebhook(SECRET, Number(r.timestamp), r.body));
      expect(Math.abs(Number(r.timestamp) - Date.now() / 1000)).toBeLessThan(60);
    }
    expect(JSON.parse(received[0]!.body)).toMatchObject({
      event: 'opened',
      alert: {
        rule: 'biodigester.temperature_c.low',
        deviceId: 'bd-alert-1',
        severity: 'warning',
        value: 29.9,
      },
    });

    failNext = 1;
    await reading({ ph: 6.2 });
    await expect.poll(() => received.length).toBe(4);
    expect(JSON.parse(received[3]!.body)).toMatchObject({
      event: 'opened',
      alert: { rule: 'biodigester.ph.low', severity: 'critical' },
    });
    // The delivery is recorded once the receiver's answer is back, after the receiver saw it.
    const lastDelivery = async () =>
      (
        await fx.t.database.pool.query<{ attempts: number; delivered: boolean }>(
          `SELECT attempts, delivered_at IS NOT NULL AS delivered FROM alert_notifications ORDER BY id DESC LIMIT 1`,
        )
      ).rows[0];
    await expect.poll(lastDelivery).toEqual({ attempts: 2, delivered: true });
  });

  it('is acknowledged with a note by the kitchen manager of that digester (audited), and by nobody else', async () => {
    const [open] = (await rows()).filter((r) => r.status === 'open');
    const unitId = (
      await fx.t.database.pool.query<{ unit_id: string }>(
        `SELECT unit_id FROM devices WHERE id = 'bd-alert-1'`,
      )
    ).rows[0]!.unit_id;
    const { user } = await createUserWithPassword(api, {
      username: 'mama-ngina',
      role: 'kitchen_manager',
    });
    await api.users.assignUnits(user.id, [unitId], { actorId: 'system', actorRole: 'system' });
    await createUserWithPassword(api, { username: 'other-kitchen', role: 'kitchen_manager' });
    const session = async (username: string) => {
      const res = await api.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { username, password: 'correct horse battery staple' },
      });
      const cookie = String([res.headers['set-cookie']].flat()[0]).split(';')[0]!;
      return { cookie, 'x-csrf-token': res.json<{ csrfToken: string }>().csrfToken };
    };
    const ack = (
      headers: Record<string, string>,
      note = 'Added warm water and stopped feeding for a day',
    ) =>
      api.app.inject({
        method: 'POST',
        url: `/api/v1/alerts/${open!.id}/ack`,
        headers,
        payload: { note },
      });

    const stranger = await ack(await session('other-kitchen'));
    expect([stranger.statusCode, stranger.json<{ code: string }>().code]).toEqual([
      404,
      'ALERT_NOT_FOUND',
    ]);
    const collector = await ack({ authorization: `Bearer ${await api.tokenFor('collector')}` });
    expect(collector.statusCode).toBe(403);
    const mine = await session('mama-ngina');
    const list = await api.app.inject({
      method: 'GET',
      url: '/api/v1/alerts?status=open',
      headers: { cookie: mine.cookie },
    });
    expect(list.json<{ alerts: { id: number }[] }>().alerts.map((a) => a.id)).toEqual([
      Number(open!.id),
    ]);
    expect((await ack(mine, '')).statusCode).toBe(400);
    const done = await ack(mine);
    expect(done.statusCode, done.body).toBe(200);
    expect((await ack(mine)).json<{ code: string }>().code).toBe('ALERT_ALREADY_ACKNOWLEDGED');
    const { rows: audit } = await fx.t.database.pool.query<{
      actor_id: string;
      after: { note: string };
    }>(`SELECT actor_id, after FROM audit_log WHERE action = 'alert.acknowledge'`);
    expect(audit).toEqual([
      {
        actor_id: user.id,
        after: expect.objectContaining({ note: 'Added warm water and stopped feeding for a day' }),
      },
    ]);
    expect((await api.auditMissing.get()).values.reduce((n, v) => n + v.value, 0)).toBe(0);
  });

  it('refuses rule changes that would break the hysteresis, and applies valid ones at once', async () => {
    const put = async (
      body: Record<string, unknown>,
      role: 'technician' | 'kitchen_manager' = 'technician',
    ) =>
      api.app.inject({
        method: 'PUT',
        url: '/api/v1/alert-rules/biodigester.h2s_ppm.high',
        headers: { authorization: `Bearer ${await api.tokenFor(role)}` },
        payload: body,
      });
    expect(
      (await put({ warn: 500, critical: 2000, clear: 900, enabled: true })).json<{ code: string }>()
        .code,
    ).toBe('ALERT_RULE_INVALID');
    expect(
      (await put({ warn: 500, critical: 2000, clear: 400, enabled: true }, 'kitchen_manager'))
        .statusCode,
    ).toBe(403);
    expect((await put({ warn: 500, critical: 2000, clear: 400, enabled: true })).statusCode).toBe(
      200,
    );
    await reading({ h2s_ppm: 600 });
    expect((await rows()).map((r) => r.rule_id)).toContain('biodigester.h2s_ppm.high');
  });

  it('opens an offline alert from broker presence and closes it when the device is back', async () => {
    await device.endAsync();
    await expect
      .poll(
        async () =>
          (
            await fx.t.database.pool.query<{ online: boolean }>(
              `SELECT online FROM devices WHERE id = 'bd-alert-1'`,
            )
          ).rows[0]!.online,
      )
      .toBe(false);
    clock = Date.now() + 20 * 60_000;
    await alerts.sweep();
    expect((await rows()).find((r) => r.rule_id === 'biodigester.device.offline')).toMatchObject({
      status: 'open',
      severity: 'warning',
    });
    device = await fx.connect(cert, { clientId: 'bd-alert-1' });
    await expect
      .poll(
        async () =>
          (
            await fx.t.database.pool.query<{ online: boolean }>(
              `SELECT online FROM devices WHERE id = 'bd-alert-1'`,
            )
          ).rows[0]!.online,
      )
      .toBe(true);
    await alerts.sweep();
    expect((await rows()).find((r) => r.rule_id === 'biodigester.device.offline')!.status).toBe(
      'closed',
    );
  });
});
