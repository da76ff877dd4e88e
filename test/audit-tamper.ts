import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type pg from 'pg';
import {
  entryHash,
  entrySigningInput,
  signedEntryHash,
  type SignedFields,
} from '../audit/audit-fns.ts';
import { keyIdOf } from '../audit/audit-signer.ts';

/**
 * What an attacker with database credentials does to the audit log, in raw SQL. The hash
 * algorithm is public (audit/audit-fns.ts), so the attacker recomputes hashes; what they lack is
 * the signing key. Superuser operations expect `SET session_replication_role = replica` (triggers
 * off) on the connection. Each returns the chain position a verifier must report as the first
 * bad one.
 */

interface Row {
  id: number;
  seq: number;
  at: Date;
  actor_id: string;
  actor_role: string;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  action: string;
  target_type: string;
  target_id: string | null;
  before: unknown;
  after: unknown;
  prev_hash: Buffer;
  hash: Buffer;
  key_id: string | null;
  signature: Buffer | null;
}

async function rows(c: pg.ClientBase, fromSeq = 1): Promise<Row[]> {
  const r = await c.query<Row>(
    `SELECT id, seq::int AS seq, at, actor_id, actor_role, host(ip) AS ip, user_agent, request_id, action, target_type, target_id, before, after, prev_hash, hash, key_id, signature FROM audit_log WHERE seq >= $1 ORDER BY seq`,
    [fromSeq],
  );
  return r.rows;
}

function fieldsOf(r: Row): SignedFields {
  return {
    seq: r.seq,
    keyId: r.key_id ?? '',
    at: r.at,
    actorId: r.actor_id,
    actorRole: r.actor_role,
    ip: r.ip,
    userAgent: r.user_agent,
    requestId: r.request_id,
    action: r.action,
    targetType: r.target_type,
    targetId: r.target_id,
    before: r.before,
    after: r.after,
  };
}

/** The hash the row would have with these fields after prev (the attacker's recomputation). */
function rehash(f: SignedFields, prev: Buffer, signed: boolean): Buffer {
  return signed ? signedEntryHash(f, prev) : entryHash(f, prev);
}

/** Recomputes prev_hash and hash of every row from `fromSeq` on, keeping their (now stale) signatures. */
export async function rechain(c: pg.ClientBase, fromSeq: number): Promise<void> {
  const [before] = (
    await c.query<{ hash: Buffer }>('SELECT hash FROM audit_log WHERE seq = $1', [fromSeq - 1])
  ).rows;
  let prev = before?.hash ?? Buffer.alloc(32);
  for (const r of await rows(c, fromSeq)) {
    const hash = rehash(fieldsOf(r), prev, r.signature !== null);
    await c.query('UPDATE audit_log SET prev_hash = $2, hash = $3 WHERE id = $1', [
      r.id,
      prev,
      hash,
    ]);
    prev = hash;
  }
}

export async function headSeq(c: pg.ClientBase): Promise<number> {
  return (await c.query<{ n: number }>('SELECT coalesce(max(seq), 0)::int AS n FROM audit_log'))
    .rows[0]!.n;
}

export const superuserTampering = {
  /** Changes what an entry says, hashes left alone. */
  async edit(c: pg.ClientBase, seq: number): Promise<number> {
    await c.query(`UPDATE audit_log SET after = '{"role":"admin"}' WHERE seq = $1`, [seq]);
    return seq;
  },
  /** Changes what an entry says and recomputes its hash and every later one (signatures cannot follow). */
  async editAndRechain(c: pg.ClientBase, seq: number): Promise<number> {
    await c.query(`UPDATE audit_log SET actor_id = 'someone-else' WHERE seq = $1`, [seq]);
    await rechain(c, seq);
    return seq;
  },
  /** Backdates an entry by a day and recomputes the chain. */
  async backdate(c: pg.ClientBase, seq: number): Promise<number> {
    await c.query(`UPDATE audit_log SET at = at - interval '1 day' WHERE seq = $1`, [seq]);
    await rechain(c, seq);
    return seq;
  },
  async delete(c: pg.ClientBase, seq: number): Promise<number> {
    await c.query('DELETE FROM audit_log WHERE seq = $1', [seq]);
    return seq;
  },
  /** The attack: delete one entry, renumber the later ones and recompute their hashes. */
  async deleteAndRechain(c: pg.ClientBase, seq: number): Promise<number> {
    await c.query('DELETE FROM audit_log WHERE seq = $1', [seq]);
    const later = await rows(c, seq + 1);
    for (const r of later)
      await c.query('UPDATE audit_log SET seq = seq - 1 WHERE id = $1', [r.id]);
    await rechain(c, seq);
    return seq;
  },
  /** Removes the newest entries from `seq` on: only a checkpoint outside the database shows it. */
  async truncateTail(c: pg.ClientBase, seq: number): Promise<number> {
    await c.query('DELETE FROM audit_log WHERE seq >= $1', [seq]);
    return seq;
  },
  /** Swaps the positions of two entries (and recomputes the chain from the first). */
  async swap(c: pg.ClientBase, seq: number, other: number): Promise<number> {
    const [a, b] = [Math.min(seq, other), Math.max(seq, other)];
    await c.query('UPDATE audit_log SET seq = -1 WHERE seq = $1', [a]);
    await c.query('UPDATE audit_log SET seq = $1 WHERE seq = $2', [a, b]);
    await c.query('UPDATE audit_log SET seq = $1 WHERE seq = -1', [b]);
    await rechain(c, a);
    return a;
  },
  /** Inserts a forged entry at a position in the middle, moves the later ones up and re-chains. */
  async insertMiddle(c: pg.ClientBase, seq: number): Promise<number> {
    const later = await rows(c, seq);
    for (const r of later.reverse())
      await c.query('UPDATE audit_log SET seq = seq + 1 WHERE id = $1', [r.id]);
    const copy = later[later.length - 1]!; // the entry that was at `seq`: its signature goes with the forgery
    await c.query(
      `INSERT INTO audit_log (seq, at, actor_id, actor_role, action, target_type, target_id, after, prev_hash, hash, key_id, signature)
       VALUES ($1, $2, 'admin', 'admin', 'user.update', 'user', 'mallory', '{"role":"admin"}', $3, $4, $5, $6)`,
      [seq, copy.at, copy.prev_hash, randomBytes(32), copy.key_id, copy.signature],
    );
    await rechain(c, seq);
    return seq;
  },
  /** Puts another entry's valid signature (and key id) on this one. */
  async borrowSignature(c: pg.ClientBase, seq: number, other: number): Promise<number> {
    await c.query(
      'UPDATE audit_log a SET signature = b.signature, key_id = b.key_id FROM audit_log b WHERE a.seq = $1 AND b.seq = $2',
      [seq, other],
    );
    return seq;
  },
  /** Strips the signature so the entry passes for one from before the key existed. */
  async unsign(c: pg.ClientBase, seq: number): Promise<number> {
    await c.query('UPDATE audit_log SET key_id = NULL, signature = NULL WHERE seq = $1', [seq]);
    await rechain(c, seq);
    return seq;
  },
};

export type SuperuserTampering = keyof typeof superuserTampering;

/**
 * The API role's attack (it may INSERT): an entry after the head, correctly hashed, back-dated,
 * under the admin's name. `signature`: none, random bytes under the real key id, or a valid
 * signature with the attacker's own key.
 */
export async function forgeAppend(
  c: pg.ClientBase,
  opts: { actorId: string; signature: 'none' | 'garbage' | 'own-key'; realKeyId: string },
): Promise<number> {
  const [head] = (
    await c.query<{ seq: number; hash: Buffer; at: Date }>(
      'SELECT seq::int AS seq, hash, at FROM audit_log ORDER BY seq DESC LIMIT 1',
    )
  ).rows;
  const own = generateKeyPairSync('ed25519');
  const keyId =
    opts.signature === 'none'
      ? null
      : opts.signature === 'own-key'
        ? keyIdOf(own.publicKey)
        : opts.realKeyId;
  const f: SignedFields = {
    seq: (head?.seq ?? 0) + 1,
    keyId: keyId ?? '',
    at: new Date((head?.at ?? new Date()).getTime() - 86_400_000),
    actorId: opts.actorId,
    actorRole: 'admin',
    ip: null,
    userAgent: null,
    requestId: null,
    action: 'user.update',
    targetType: 'user',
    targetId: 'mallory',
    before: { role: 'collector' },
    after: { role: 'admin' },
  };
  const prev = head?.hash ?? Buffer.alloc(32);
  const hash = keyId === null ? entryHash(f, prev) : signedEntryHash(f, prev);
  const signature =
    opts.signature === 'none'
      ? null
      : opts.signature === 'own-key'
        ? sign(null, entrySigningInput(hash), own.privateKey)
        : randomBytes(64);
  await c.query(
    `INSERT INTO audit_log (seq, at, actor_id, actor_role, action, target_type, target_id, before, after, prev_hash, hash, key_id, signature) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`,
    [
      f.seq,
      f.at,
      f.actorId,
      f.actorRole,
      f.action,
      f.targetType,
      f.targetId,
      JSON.stringify(f.before),
      JSON.stringify(f.after),
      prev,
      hash,
      keyId,
      signature,
    ],
  );
  return f.seq;
}
