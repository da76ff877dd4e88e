import { execFile } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../test/db.ts';
import { testAuditSigner } from '../test/audit-key.ts';
import { entrySigningInput, signedEntryHash } from './audit-fns.ts';
import { keyIdOf } from './audit-signer.ts';
import { createAuditCheckpointer, createAuditLog, exportAudit } from './index.ts';
import { verifyAuditExport } from './audit-verify-offline.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const N = 10;

let t: TestDatabase;
let dir: string;
let lines: string[];
let checkpointDir: string;
let publicKeyFile: string;

beforeAll(async () => {
  t = await createTestDatabase();
  dir = await mkdtemp(path.join(os.tmpdir(), 'thamani-audit-offline-'));
  checkpointDir = path.join(dir, 'checkpoints');
  const audit = createAuditLog({ db: t.database.db, signer: testAuditSigner });
  for (let i = 1; i <= N; i++)
    await audit.record({
      actorId: `user-${i % 3}`,
      actorRole: 'admin',
      ip: i % 2 ? '10.0.0.7' : null,
      action: 'user.update',
      targetType: 'user',
      targetId: `u${i}`,
      before: { role: 'collector', tags: [i, null, 'x'] },
      after: { role: i % 2 ? 'technician' : 'auditor', note: `é ${i}` },
    });
  await createAuditCheckpointer({
    db: t.database.db,
    signer: testAuditSigner,
    dir: checkpointDir,
  }).checkpoint();
  lines = [];
  for await (const e of exportAudit(t.database.db, {})) lines.push(JSON.stringify(e));
  publicKeyFile = path.join(dir, 'audit-signing.pub');
  await writeFile(publicKeyFile, testAuditSigner.publicKeyPem);
});

let fileNo = 0;
async function verifyLines(ls: string[]) {
  const exportFile = path.join(dir, `export-${++fileNo}.ndjson`);
  await writeFile(exportFile, ls.map((l) => `${l}\n`).join(''));
  return verifyAuditExport({ exportFile, checkpointDir, publicKeyFile });
}

type Line = Record<string, unknown>;
const attacker = generateKeyPairSync('ed25519');

/** File-level tampering with an export: what someone handing a doctored export to an auditor would try. */
const tamper = {
  /** A field changed, hashes left alone. */
  edit: (ls: Line[], k: number) => ((ls[k - 1]!.actorId = 'someone-else'), k),
  /** A field changed and the hashes recomputed from there on (signatures cannot follow). */
  editRehash: (ls: Line[], k: number) => (
    (ls[k - 1]!.after = { role: 'admin' }),
    rehashFrom(ls, k),
    k
  ),
  /** Re-signed with the attacker's own key. */
  resign: (ls: Line[], k: number) => {
    const l = ls[k - 1]!;
    l.keyId = keyIdOf(attacker.publicKey);
    rehashFrom(ls, k);
    l.signature = sign(
      null,
      entrySigningInput(Buffer.from(l.hash as string, 'hex')),
      attacker.privateKey,
    ).toString('base64');
    return k;
  },
  delete: (ls: Line[], k: number) => (ls.splice(k - 1, 1), k),
  truncate: (ls: Line[], k: number) => (ls.splice(k - 1), k),
  swapWithNext: (ls: Line[], k: number) => {
    const i = k === N ? k - 1 : k;
    [ls[i - 1], ls[i]] = [ls[i]!, ls[i - 1]!];
    return i;
  },
  duplicate: (ls: Line[], k: number) => (ls.splice(k, 0, { ...ls[k - 1]! }), k + 1),
  append: (ls: Line[]) => {
    const last = ls[ls.length - 1]!;
    ls.push({
      ...last,
      id: (last.id as number) + 1,
      seq: (last.seq as number) + 1,
      prevHash: last.hash,
      action: 'user.create',
    });
    rehashFrom(ls, ls.length);
    return N + 1;
  },
};

function rehashFrom(ls: Line[], k: number): void {
  for (let i = k - 1; i < ls.length; i++) {
    const l = ls[i]!;
    if (i > 0) l.prevHash = ls[i - 1]!.hash;
    const fields = {
      ...(l as never as { actorId: string; actorRole: string; action: string; targetType: string }),
      seq: l.seq as number,
      keyId: l.keyId as string,
      at: new Date(l.at as string),
      ip: l.ip as string | null,
      userAgent: null,
      requestId: null,
      targetId: l.targetId as string | null,
      before: l.before,
      after: l.after,
    };
    l.hash = signedEntryHash(fields, Buffer.from(l.prevHash as string, 'hex')).toString('hex');
  }
}

describe('offline verification of an export (no database)', () => {
  it('an untouched export verifies, checkpoint included', async () => {
    expect(await verifyLines(lines)).toMatchObject({
      ok: true,
      checked: N,
      checkpoints: { checked: 1, latest: { size: N } },
    });
  });

  it('property: any tampering of an export at any position is detected and names the first bad position', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...(Object.keys(tamper) as (keyof typeof tamper)[])),
        fc.integer({ min: 1, max: N }),
        async (op, k) => {
          const ls = lines.map((l) => JSON.parse(l) as Line);
          const expected = tamper[op](ls, k);
          const result = await verifyLines(ls.map((l) => JSON.stringify(l)));
          expect(result.ok).toBe(false);
          expect(result.firstBroken?.seq).toBe(expected);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('a checkpoint file written without the key is rejected, not ignored', async () => {
    const cps = path.join(dir, 'forged-checkpoints');
    const { checkpoint } = (await createAuditCheckpointer({
      db: t.database.db,
      signer: testAuditSigner,
      dir: cps,
    }).checkpoint())!;
    await writeFile(
      path.join(cps, 'checkpoint-999.json'),
      JSON.stringify({ ...checkpoint, size: N - 1 }),
    );
    const exportFile = path.join(dir, 'plain.ndjson');
    await writeFile(exportFile, lines.map((l) => `${l}\n`).join(''));
    const result = await verifyAuditExport({ exportFile, checkpointDir: cps, publicKeyFile });
    expect(result).toMatchObject({
      ok: false,
      badCheckpoints: [{ source: 'checkpoint-999.json', reason: 'signature does not verify' }],
    });
  });

  it("the verifier's import graph has no database driver: only node: built-ins outside our own sources", () => {
    const seen = new Set<string>();
    const external = new Set<string>();
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(
        /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm,
      )) {
        const spec = m[1] ?? m[2] ?? m[3]!;
        if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec));
        else external.add(spec);
      }
    };
    visit(path.join(here, 'audit-verify-offline.ts'));
    expect([...seen].map((f) => path.relative(root, f)).sort()).toEqual([
      'audit/audit-checkpoint-files.ts',
      'audit/audit-fns.ts',
      'audit/audit-signer.ts',
      'audit/audit-verify-fns.ts',
      'audit/audit-verify-offline.ts',
      'audit/signing-key-file.ts',
    ]);
    expect([...external].filter((s) => !s.startsWith('node:'))).toEqual([]);
  });

  it('bin/thamani-audit-verify.js runs on its own: exit 0 on the export, 2 on a doctored one, naming the position', async () => {
    const run = promisify(execFile);
    const good = path.join(dir, 'good.ndjson');
    await writeFile(good, lines.map((l) => `${l}\n`).join(''));
    const bin = path.join(root, 'bin', 'thamani-audit-verify.js');
    expect(existsSync(bin)).toBe(true);
    // No database settings at all in its environment.
    const env = { PATH: process.env.PATH ?? '', HOME: os.tmpdir() };
    const ok = await run(
      process.execPath,
      [bin, '--export', good, '--checkpoints', checkpointDir, '--public-key', publicKeyFile],
      { env, cwd: root },
    );
    expect(ok.stdout).toMatch(new RegExp(`audit chain intact: ${N} entries verified`));
    const ls = lines.map((l) => JSON.parse(l) as Line);
    ls.splice(3, 1);
    const bad = path.join(dir, 'bad.ndjson');
    await writeFile(bad, ls.map((l) => `${JSON.stringify(l)}\n`).join(''));
    const err = await run(
      process.execPath,
      [bin, '--export', bad, '--checkpoints', checkpointDir, '--public-key', publicKeyFile],
      { env, cwd: root },
    ).then(
      () => undefined,
      (e: { code: number; stdout: string }) => e,
    );
    expect(err).toMatchObject({ code: 2, stdout: expect.stringMatching(/BROKEN at position 4/) });
  });
});
