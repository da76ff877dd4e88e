import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { drizzle } from 'drizzle-orm/node-postgres';
import fc from 'fast-check';
import pg from 'pg';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import * as schema from '../db/schema/index.ts';
import { withDatabase } from '../test/global-setup.ts';
import { createApiHarness, type ApiHarness } from '../test/api-harness.ts';
import { testAuditPublicKeys, testAuditSigner } from '../test/audit-key.ts';
import {
  forgeAppend,
  headSeq,
  superuserTampering,
  type SuperuserTampering,
} from '../test/audit-tamper.ts';
import {
  createAuditCheckpointer,
  readCheckpointFiles,
  verifyAuditChain,
  type VerifyResult,
} from './index.ts';

let h: ApiHarness;
let auditor: { authorization: string };
let checkpointDir: string;
const N = 8;
const actor = {
  actorId: 'u1',
  actorRole: 'technician',
  ip: '::FFFF:127.0.0.1',
  userAgent: 'test',
  requestId: 'r1',
};

beforeAll(async () => {
  checkpointDir = await mkdtemp(path.join(os.tmpdir(), 'thamani-audit-cp-'));
  h = await createApiHarness({ auditCheckpointDir: checkpointDir });
  auditor = { authorization: `Bearer ${await h.tokenFor('auditor')}` };
  // Written through the API's own audit log, as the API's database role.
  for (let i = 1; i < N; i++)
    await h.audit.record({
      ...actor,
      action: 'device.update',
      targetType: 'device',
      targetId: `d${i}`,
      before: { status: 'pending', n: i },
      after: { status: 'active', n: i },
    });
  // The head, signed and kept outside the database.
  await createAuditCheckpointer({
    db: h.t.database.db,
    signer: testAuditSigner,
    dir: checkpointDir,
  }).checkpoint();
});

const connect = async (url: string): Promise<pg.Client> => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
};
/** The superuser on this test database: what an attacker with full database access holds. */
const superuserUrl = (): string => withDatabase(inject('adminUrl'), h.t.name);

/**
 * Runs the attack in a transaction on the attacker's own connection, verifies what it left (the
 * same verifyAuditChain the API and CLI run, on that connection) and rolls back, so every case
 * starts from the same intact log.
 */
async function attackThenVerify(
  url: string,
  attack: (c: pg.Client) => Promise<number>,
  opts: { replica: boolean },
): Promise<{ expected: number; result: VerifyResult }> {
  const c = await connect(url);
  try {
    await c.query('BEGIN');
    if (opts.replica) await c.query('SET LOCAL session_replication_role = replica');
    const expected = await attack(c);
    const result = await verifyAuditChain(drizzle(c, { schema }), {
      publicKeys: testAuditPublicKeys,
      checkpoints: await readCheckpointFiles(checkpointDir),
    });
    return { expected, result };
  } finally {
    await c.query('ROLLBACK').catch(() => undefined);
    await c.end();
  }
}

const verifyRoute = async (): Promise<VerifyResult> =>
  (await h.app.inject({ method: 'GET', url: '/api/v1/audit/verify', headers: auditor })).json();

describe('append-only audit store', () => {
  it('refuses UPDATE, DELETE and TRUNCATE even for the superuser owner', async () => {
    const c = await connect(superuserUrl());
    try {
      await expect(c.query(`UPDATE audit_log SET action = 'x' WHERE seq = 1`)).rejects.toThrow(
        /append-only: UPDATE refused/,
      );
      await expect(c.query(`DELETE FROM audit_log WHERE seq = 1`)).rejects.toThrow(
        /append-only: DELETE refused/,
      );
      await expect(c.query(`TRUNCATE audit_log`)).rejects.toThrow(/append-only: TRUNCATE refused/);
      await c.query('BEGIN');
      await c.query(`SELECT set_config('thamani.audit_retention', 'on', true)`);
      await expect(c.query(`DELETE FROM audit_log WHERE seq = 1`)).rejects.toThrow(
        /younger than 7 years/,
      );
      await c.query('ROLLBACK');
      await expect(c.query(`SELECT audit_log_apply_retention(interval '1 year')`)).rejects.toThrow(
        /at least 7 years/,
      );
    } finally {
      await c.end();
    }
    // The creation of the auditor's API token plus the device entries, all signed, and the checkpoint matched.
    expect(await verifyRoute()).toMatchObject({
      ok: true,
      checked: N,
      legacy: 0,
      checkpoints: { checked: 1, latest: { size: N } },
    });
  });

  it('lists with filters and pagination, and exports NDJSON in chain order with positions and signatures', async () => {
    type Page = { entries: { targetId: string }[]; nextBeforeId: number };
    const page1 = (
      await h.app.inject({
        method: 'GET',
        url: '/api/v1/audit?action=device.update&limit=2',
        headers: auditor,
      })
    ).json<Page>();
    expect(page1.entries.map((e) => e.targetId)).toEqual(['d7', 'd6']);
    expect(page1.entries[0]).toMatchObject({
      actorId: 'u1',
      actorRole: 'technician',
      ip: '::ffff:127.0.0.1',
      userAgent: 'test',
      requestId: 'r1',
      before: { status: 'pending', n: 7 },
      after: { status: 'active', n: 7 },
    });
    const page2 = (
      await h.app.inject({
        method: 'GET',
        url: `/api/v1/audit?action=device.update&limit=2&beforeId=${page1.nextBeforeId}`,
        headers: auditor,
      })
    ).json<Page>();
    expect(page2.entries.map((e) => e.targetId)).toEqual(['d5', 'd4']);
    const exported = await h.app.inject({
      method: 'GET',
      url: '/api/v1/audit/export',
      headers: auditor,
    });
    expect(exported.headers['content-type']).toMatch(/application\/x-ndjson/);
    const lines = exported.body
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            seq: number;
            prevHash: string;
            hash: string;
            keyId: string;
            signature: string;
          },
      );
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    expect(lines[1]!.prevHash).toBe(lines[0]!.hash);
    expect(
      lines.every(
        (l) =>
          l.keyId === testAuditSigner.keyId && Buffer.from(l.signature, 'base64').length === 64,
      ),
    ).toBe(true);
  });
});

describe('tampering by anyone holding database credentials is detected, at the first bad entry', () => {
  it("a superuser deletes one entry with triggers off and recomputes every later hash and position (the issue's attack)", async () => {
    const { expected, result } = await attackThenVerify(
      superuserUrl(),
      (c) => superuserTampering.deleteAndRechain(c, 3),
      { replica: true },
    );
    expect(result).toMatchObject({
      ok: false,
      checked: expected - 1,
      firstBroken: { seq: 3, reason: expect.stringMatching(/signature does not verify/) },
    });
  });

  it("the API's own database role appends a correctly hashed, back-dated entry under the admin's name (the issue's attack)", async () => {
    for (const signature of ['none', 'garbage', 'own-key'] as const) {
      const { expected, result } = await attackThenVerify(
        h.apiUrl,
        (c) =>
          forgeAppend(c, { actorId: 'admin-user-id', signature, realKeyId: testAuditSigner.keyId }),
        { replica: false },
      );
      expect(expected).toBe(N + 1);
      expect(result, signature).toMatchObject({
        ok: false,
        checked: N,
        firstBroken: { seq: N + 1 },
      });
      expect(result.firstBroken!.reason).toMatch(
        /not signed|signature does not verify|not a trusted audit key/,
      );
    }
  });

  it('the API role cannot switch the triggers off or remove anything', async () => {
    const c = await connect(h.apiUrl);
    try {
      await expect(c.query('SET session_replication_role = replica')).rejects.toThrow(
        /permission denied/,
      );
      await expect(c.query('DELETE FROM audit_log WHERE seq = 1')).rejects.toThrow(
        /permission denied/,
      );
      await expect(c.query(`UPDATE audit_log SET after = '{}' WHERE seq = 1`)).rejects.toThrow(
        /permission denied/,
      );
    } finally {
      await c.end();
    }
  });

  it('removal of the newest entries is detected through the signed checkpoint', async () => {
    const { result } = await attackThenVerify(
      superuserUrl(),
      (c) => superuserTampering.truncateTail(c, N - 1),
      { replica: true },
    );
    expect(result).toMatchObject({
      ok: false,
      checked: N - 2,
      firstBroken: { seq: N - 1, id: null, reason: expect.stringMatching(/tail was removed/) },
    });
  });

  it('property: any tampering operation at any position is detected and names the first bad position', async () => {
    const ops = Object.keys(superuserTampering) as SuperuserTampering[];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ops, 'forgeAppend' as const),
        fc.integer({ min: 1, max: N }),
        fc.integer({ min: 1, max: N }),
        async (op, k, other) => {
          if (op === 'forgeAppend') {
            const { expected, result } = await attackThenVerify(
              h.apiUrl,
              (c) =>
                forgeAppend(c, {
                  actorId: 'admin',
                  signature: k % 2 ? 'garbage' : 'none',
                  realKeyId: testAuditSigner.keyId,
                }),
              { replica: false },
            );
            expect(result.firstBroken?.seq).toBe(expected);
            return;
          }
          if ((op === 'swap' || op === 'borrowSignature') && other === k)
            other = k === N ? 1 : k + 1;
          const { expected, result } = await attackThenVerify(
            superuserUrl(),
            (c) => superuserTampering[op](c, k, other),
            { replica: true },
          );
          expect(result.ok).toBe(false);
          // An entry unsigned at position 1 is indistinguishable from a legacy prefix of one: the
          // tampering shows at position 2, whose signature covers position 1's hash.
          expect(result.firstBroken?.seq).toBe(op === 'unsign' && expected === 1 ? 2 : expected);
          expect(result.checked).toBe(result.firstBroken!.seq - 1);
        },
      ),
      { numRuns: 80 },
    );
    // Every attack was rolled back: the log still verifies.
    expect(await verifyRoute()).toMatchObject({ ok: true, checked: N });
  });

  it('a forged append committed by the API role turns /audit/verify to BROKEN at that position', async () => {
    const c = await connect(h.apiUrl);
    try {
      await forgeAppend(c, {
        actorId: 'admin',
        signature: 'garbage',
        realKeyId: testAuditSigner.keyId,
      });
      expect(await headSeq(c)).toBe(N + 1);
    } finally {
      await c.end();
    }
    // Later legitimate entries chain after it: the verifier still names the forged one.
    await h.audit.record({
      ...actor,
      action: 'device.update',
      targetType: 'device',
      targetId: 'after',
    });
    expect(await verifyRoute()).toMatchObject({
      ok: false,
      checked: N,
      firstBroken: { seq: N + 1, reason: expect.stringMatching(/signature does not verify/) },
    });
  });
});
