import { asQueryable, type DbExecutor } from '../db/scoped.ts';

/**
 * The SQL of verifier access (migrations 0031, 0037). Tokens are created, listed and revoked
 * through definer functions that admit an admin's verified scope (the HTTP API) or the owner's
 * trusted work (the CLI), never reading the table directly; everything else runs in a verifier's verified scope, where row-level
 * security limits mrv_reports and mrv_readings_archive to the token's digesters and period.
 */

export interface VerifierTokenInfo {
  id: string;
  name: string;
  unitIds: string[];
  periodFrom: Date;
  periodTo: Date;
  expiresAt: Date;
  createdBy: string;
  createdAt: Date;
  revokedAt: Date | null;
}

export interface VisibleReport {
  id: string;
  /** null for a site report (it covers every digester of its site). */
  unitId: string | null;
  /** The digester's name, or for a site report the site's. */
  unitName: string;
  /** How many digesters the report covers (1, or a site's). */
  unitCount: number;
  siteName: string;
  periodStart: Date;
  periodEnd: Date;
  version: number;
  supersedes: string | null;
  issuedAt: Date;
  merkleRoot: string;
  leafCount: number;
}

/** One hour of a report's archived readings: the mean gas flow and methane fraction measured in it. */
export interface HourBucket {
  t: number;
  flowLpm: number | null;
  methanePct: number | null;
  readings: number;
}

const iso = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

const TOKEN_COLUMNS = `id, name, unit_ids::text[] AS "unitIds", ${iso('period_from')} AS "periodFrom", ${iso('period_to')} AS "periodTo", ${iso('expires_at')} AS "expiresAt", created_by AS "createdBy", ${iso('created_at')} AS "createdAt", ${iso('revoked_at')} AS "revokedAt"`;

type TokenRow = Omit<
  VerifierTokenInfo,
  'periodFrom' | 'periodTo' | 'expiresAt' | 'createdAt' | 'revokedAt'
> & {
  periodFrom: string;
  periodTo: string;
  expiresAt: string;
  createdAt: string;
  revokedAt: string | null;
};

function toToken(r: TokenRow): VerifierTokenInfo {
  return {
    ...r,
    periodFrom: new Date(r.periodFrom),
    periodTo: new Date(r.periodTo),
    expiresAt: new Date(r.expiresAt),
    createdAt: new Date(r.createdAt),
    revokedAt: r.revokedAt === null ? null : new Date(r.revokedAt),
  };
}

export function createVerifierRepo() {
  return {
    /** Owner only: the units given, checked to be digesters (ids or names). */
    async digesters(tx: DbExecutor, refs: readonly string[]): Promise<Map<string, string>> {
      const { rows } = await asQueryable(tx).query<{ ref: string; id: string; kind: string }>(
        `SELECT r.ref, u.id, u.kind::text AS kind FROM unnest($1::text[]) AS r(ref) JOIN units u ON u.id::text = r.ref OR u.name = r.ref`,
        [`{${refs.map((r) => JSON.stringify(r)).join(',')}}`],
      );
      return new Map(rows.filter((r) => r.kind === 'biodigester').map((r) => [r.ref, r.id]));
    },

    async create(
      tx: DbExecutor,
      t: {
        name: string;
        hash: Buffer;
        unitIds: readonly string[];
        periodFrom: Date;
        periodTo: Date;
        expiresAt: Date;
        createdBy: string;
      },
    ): Promise<VerifierTokenInfo> {
      const { rows } = await asQueryable(tx).query<TokenRow>(
        `SELECT ${TOKEN_COLUMNS} FROM thamani_mrv_verifier_insert($1, $2, $3::uuid[], $4, $5, $6, $7)`,
        [
          t.name,
          t.hash,
          `{${t.unitIds.join(',')}}`,
          t.periodFrom,
          t.periodTo,
          t.expiresAt,
          t.createdBy,
        ],
      );
      return toToken(rows[0]!);
    },

    async revoke(tx: DbExecutor, id: string): Promise<boolean> {
      // Not a uuid: no such token (the function takes a uuid; a cast error is not "not found").
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) return false;
      const { rows } = await asQueryable(tx).query<{ done: boolean }>(
        'SELECT thamani_mrv_verifier_revoke($1::uuid) AS done',
        [id],
      );
      return rows[0]!.done;
    },

    async tokens(tx: DbExecutor): Promise<VerifierTokenInfo[]> {
      const { rows } = await asQueryable(tx).query<TokenRow>(
        `SELECT ${TOKEN_COLUMNS} FROM thamani_mrv_verifier_list()`,
      );
      return rows.map(toToken);
    },

    /** In a verifier's scope: its own token (without the hash), as the database verified it. */
    async current(tx: DbExecutor): Promise<VerifierTokenInfo | undefined> {
      const { rows } = await asQueryable(tx).query<TokenRow>(
        `SELECT ${TOKEN_COLUMNS} FROM thamani_verifier_token() t WHERE id IS NOT NULL`,
      );
      return rows[0] && toToken(rows[0]);
    },

    /** The reports row-level security lets this scope read, newest period first. */
    async reports(tx: DbExecutor): Promise<VisibleReport[]> {
      const { rows } = await asQueryable(tx).query<
        Omit<VisibleReport, 'periodStart' | 'periodEnd' | 'issuedAt'> & {
          periodStart: string;
          periodEnd: string;
          issuedAt: string;
        }
      >(
        `SELECT id, unit_id AS "unitId", coalesce(document::jsonb #>> '{report,subject,unit,name}', document::jsonb #>> '{report,subject,site,name}') AS "unitName", coalesce(cardinality(unit_ids), 1) AS "unitCount", document::jsonb #>> '{report,subject,site,name}' AS "siteName",
                ${iso('period_start')} AS "periodStart", ${iso('period_end')} AS "periodEnd", version, supersedes, ${iso('issued_at')} AS "issuedAt", merkle_root AS "merkleRoot", leaf_count::int AS "leafCount"
           FROM mrv_reports ORDER BY period_start DESC, "unitName", version DESC`,
      );
      return rows.map((r) => ({
        ...r,
        periodStart: new Date(r.periodStart),
        periodEnd: new Date(r.periodEnd),
        issuedAt: new Date(r.issuedAt),
      }));
    },

    /** Hourly means of a report's archived leaves (its units, its leaf sources), for the production charts. */
    async hourly(
      tx: DbExecutor,
      unitIds: readonly string[],
      start: Date,
      end: Date,
      reports: readonly string[],
    ): Promise<HourBucket[]> {
      const { rows } = await asQueryable(tx).query<{
        t: string;
        flow: number | null;
        methane: number | null;
        n: number;
      }>(
        `SELECT extract(epoch FROM date_trunc('hour', ts))::bigint::text AS t, avg(gas_flow_lpm) AS flow, avg(methane_pct) AS methane, count(*)::int AS n
           FROM mrv_readings_archive WHERE unit_id = ANY($1::uuid[]) AND ts >= $2 AND ts < $3 AND archived_by = ANY($4::uuid[])
          GROUP BY 1 ORDER BY 1`,
        [`{${unitIds.join(',')}}`, start, end, `{${reports.join(',')}}`],
      );
      return rows.map((r) => ({
        t: Number(r.t),
        flowLpm: r.flow === null ? null : Number(r.flow),
        methanePct: r.methane === null ? null : Number(r.methane),
        readings: r.n,
      }));
    },
  };
}

export type VerifierRepo = ReturnType<typeof createVerifierRepo>;
