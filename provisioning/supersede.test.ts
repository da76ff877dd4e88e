import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectOutcome as outcome,
  startBrokerFixture,
  type BrokerFixture,
} from '../test/broker-fixture.ts';
import { deviceKeyAndCsr } from '../test/device-keys.ts';

let f: BrokerFixture;
beforeAll(async () => {
  f = await startBrokerFixture();
});
afterAll(async () => {
  await f?.close();
});

const admin = { actorId: 'test-admin', actorRole: 'admin' };

/** Enrols the device again with a fresh one-time token and key, as a re-flashed device would. */
async function enrol(
  deviceId: string,
): Promise<{ key: string; cert: string; serialHex: string; superseded: string[] }> {
  const { token } = await f.pki.createEnrolmentToken(deviceId, admin);
  const { key, csr } = deviceKeyAndCsr(deviceId);
  const issued = await f.pki.enroll(
    { token, csr },
    { ip: '192.0.2.7', userAgent: 'test', requestId: 'req-1' },
  );
  return {
    key,
    cert: issued.certificate,
    serialHex: issued.serial,
    superseded: issued.superseded ?? [],
  };
}

const activeSerials = async (deviceId: string): Promise<string[]> =>
  (
    await f.t.database.pool.query<{ serial: string }>(
      `SELECT serial FROM certificates WHERE device_id = $1 AND status = 'active'`,
      [deviceId],
    )
  ).rows.map((r) => r.serial);

describe('enrolment supersedes earlier certificates', () => {
  it('revokes the earlier certificate at once (reason superseded): its live session is cut and it cannot connect again; audited', async () => {
    const first = await f.addDevice('bd-sup-1');
    const live = await f.connect(first, { clientId: 'bd-sup-1' });
    const cut = new Promise<void>((resolve) => live.once('close', () => resolve()));

    const second = await enrol('bd-sup-1');
    expect(second.superseded).toEqual([first.serialHex]);
    await cut;
    expect(await outcome(() => f.connect(first, { clientId: 'bd-sup-1' }))).toMatch(
      /^connack:5$|^tls:/,
    );
    expect(await outcome(() => f.connect(second, { clientId: 'bd-sup-1' }))).toBe('connected');
    expect(await activeSerials('bd-sup-1')).toEqual([second.serialHex]);

    const { rows } = await f.t.database.pool.query<{
      actor_id: string;
      ip: string;
      target_id: string;
      after: Record<string, unknown>;
    }>(
      `SELECT actor_id, host(ip) AS ip, target_id, after FROM audit_log WHERE action = 'certificate.revoke' AND target_id = $1`,
      [first.serialHex],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      ip: '192.0.2.7',
      after: {
        reason: 'superseded',
        supersededBy: second.serialHex,
        by: 'certificate.enrol',
        deviceId: 'bd-sup-1',
      },
    });
    expect(rows[0]!.actor_id).toMatch(/^enrolment:/);
    // And the published CRL lists it.
    f.pki.invalidateCrl();
    const crl = await f.pki.crl();
    expect(crl.der.toString('hex')).toContain(first.serialHex);
  });

  it('leaves exactly one active certificate, the newest, whatever mix of enrolments and technician issues came before', async () => {
    await f.addDevice('bd-sup-many');
    const issued: string[] = [];
    for (const how of ['enrol', 'issue', 'enrol', 'enrol', 'issue'] as const) {
      if (how === 'enrol') issued.push((await enrol('bd-sup-many')).serialHex);
      else
        issued.push(
          (await f.pki.issueFromCsr('bd-sup-many', deviceKeyAndCsr('bd-sup-many').csr, admin))
            .serial,
        );
      expect(await activeSerials('bd-sup-many')).toEqual([issued[issued.length - 1]]);
    }
    const { rows } = await f.t.database.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM certificates WHERE device_id = 'bd-sup-many' AND status = 'revoked' AND revocation_reason = 4`,
    );
    expect(rows[0]!.n).toBe(issued.length); // the fixture's own first certificate too
  });
});
