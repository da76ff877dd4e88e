import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';

/**
 * The one place that reads process.env. Parsed once at start-up; every problem is reported
 * together, then the result is frozen and each factory receives only its own slice.
 */

const port = z.coerce
  .number({ error: 'must be a number' })
  .int('must be a whole number')
  .min(1, 'must be a TCP port between 1 and 65535')
  .max(65535, 'must be a TCP port between 1 and 65535');

const postgresUrl = z.string().refine(
  (value) => {
    try {
      const url = new URL(value);
      return (
        (url.protocol === 'postgres:' || url.protocol === 'postgresql:') && url.hostname !== ''
      );
    } catch {
      return false;
    }
  },
  { message: 'must be a URL like postgres://user:password@host:5432/database' },
);

const envSchema = z.object({
  THAMANI_ENV: z.enum(['development', 'production', 'test']).default('development'),
  DATABASE_URL: postgresUrl.optional(),
  // A read replica for dashboards and exports (docs/scaling.md); unset: they read the main pool.
  DATABASE_READ_URL: postgresUrl.optional(),
  // What this node runs (docs/operations.md, "Running several nodes"); `thamani start --role` wins.
  THAMANI_ROLE: z
    .enum(['all', 'gateway', 'api'], { error: 'must be one of all, gateway, api' })
    .default('all'),
  // How often a node checks its cluster leases and a follower tries to take a dead leader's (app/leader-lease.ts).
  CLUSTER_LEASE_CHECK_MS: z.coerce.number().int().min(100).max(60_000).default(2000),
  THAMANI_DATA_DIR: z.string().min(1).default('./data'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  THAMANI_PUBLIC_HOSTNAME: z
    .string()
    .regex(/^[a-z0-9.-]+$/i, 'must be a DNS name or an IP address')
    .default('localhost'),
  MQTT_HOST: z.string().min(1).default('0.0.0.0'),
  MQTT_PORT: port.default(8883),
  HTTPS_HOST: z.string().min(1).default('0.0.0.0'),
  HTTPS_PORT: port.default(8443),
  HTTP_REDIRECT_PORT: port.default(8080),
  EMBEDDED_PG_PORT: port.default(54329),
  MQTT_MAX_PACKET_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(256 * 1024),
  MQTT_MAX_CONNECTIONS: z.coerce.number().int().min(1).default(20_000),
  MQTT_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  MQTT_KEEPALIVE_MIN_S: z.coerce.number().int().min(1).default(10),
  MQTT_KEEPALIVE_MAX_S: z.coerce.number().int().min(1).max(65_535).default(1200),
  MQTT_MAX_CLIENT_ID_LENGTH: z.coerce.number().int().min(1).max(65_535).default(64),
  MQTT_RATE_PER_SECOND: z.coerce.number().positive().default(20),
  MQTT_RATE_BURST: z.coerce.number().int().min(1).default(100),
  MQTT_RATE_MAX_WAIT_MS: z.coerce.number().int().min(0).default(10_000),
  MQTT_RATE_FLOOD_SECONDS: z.coerce.number().positive().max(3600).default(30),
  MQTT_DEVICE_CONNECTS_MAX: z.coerce.number().int().min(1).default(10),
  MQTT_DEVICE_CONNECTS_WINDOW_S: z.coerce.number().int().min(1).max(86_400).default(60),
  MQTT_MAX_PENDING: z.coerce.number().int().min(1).default(2500),
  MQTT_MAX_PENDING_PER_ADDRESS: z.coerce.number().int().min(1).default(50),
  /** Reconnect storms: sockets waiting for a handshake capped at the recent handshake rate × this (0: off); broker/admission.ts. */
  MQTT_HANDSHAKE_TARGET_MS: z.coerce.number().int().min(0).default(0),
  MQTT_HANDSHAKE_FLOOR: z.coerce.number().int().min(1).default(500),
  // Behind HAProxy (docs/operations.md, "Running clustered"): a PROXY v2 header gives the device's
  // address, believed only from these sources (IPs or CIDRs, comma-separated); broker/proxy-protocol.ts.
  MQTT_PROXY_PROTOCOL: z.enum(['true', 'false']).default('false'),
  MQTT_TRUSTED_PROXIES: z.string().default(''),
  // Clustered broker (ADR 0010): sessions, subscriptions, queued QoS 1 and pub/sub between nodes.
  REDIS_URL: z
    .url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' })
    .optional(),
  REDIS_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(5000),
  DB_POOL_MAX: z.coerce.number().int().min(2).max(200).default(10),
  // Security events (docs/security-model.md, "Security events"): one record per device and reason per window.
  SECURITY_EVENTS_WINDOW_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),
  SECURITY_EVENTS_MAX_KEYS: z.coerce.number().int().min(10).max(100_000).default(1000),
  PKI_PASSPHRASE: z.string().min(16, 'must be at least 16 characters').optional(),
  PKI_DEVICE_CERT_DAYS: z.coerce.number().int().min(1).max(3650).default(397),
  PKI_SERVER_CERT_DAYS: z.coerce.number().int().min(1).max(825).default(397),
  PKI_ENROLMENT_TOKEN_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 30)
    .default(24),
  PKI_RENEWAL_WINDOW_DAYS: z.coerce.number().int().min(1).max(365).default(30),
  PKI_ROTATION_OVERLAP_HOURS: z.coerce
    .number()
    .min(0)
    .max(24 * 90)
    .default(24),
  ENROL_MAX_PER_ADDRESS: z.coerce.number().int().min(1).default(100),
  ENROL_MAX_FAILURES_PER_ADDRESS: z.coerce.number().int().min(1).default(10),
  ENROL_WINDOW_MINUTES: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 60)
    .default(10),
  INGEST_BACKFILL_DAYS: z.coerce.number().int().min(1).max(30).default(7),
  INGEST_MAX_FUTURE_SECONDS: z.coerce.number().int().min(0).max(86_400).default(300),
  INGEST_MAX_BATCH: z.coerce.number().int().min(1).max(5000).default(500),
  INGEST_MAX_PAYLOAD_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(200 * 1024),
  INGEST_QUARANTINE_PAYLOAD_BYTES: z.coerce
    .number()
    .int()
    .min(256)
    .default(64 * 1024),
  INGEST_BATCH_MAX_ROWS: z.coerce.number().int().min(1).default(5000),
  INGEST_BATCH_MAX_WAIT_MS: z.coerce.number().int().min(0).max(1000).default(5),
  INGEST_MAX_PENDING: z.coerce.number().int().min(100).default(50_000),
  INGEST_COMMIT_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
  /** How far seq may jump past a device's highest one (docs/device-contract.md); beyond is SEQ_JUMP. */
  INGEST_MAX_SEQ_JUMP: z.coerce
    .number()
    .int()
    .min(1)
    .max(Number.MAX_SAFE_INTEGER)
    .default(1_000_000),
  READINGS_RAW_RETENTION_DAYS: z.coerce.number().int().min(1).max(36500).default(400),
  // Operator API security (docs/security-model.md). Secrets: generated under dataDir/secrets in development.
  SESSION_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  SESSION_IDLE_MINUTES: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 60)
    .default(30),
  SESSION_MAX_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 30)
    .default(12),
  // API tokens always expire: the default when none is asked for, and the most that may be asked.
  API_TOKEN_DEFAULT_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
  API_TOKEN_MAX_DAYS: z.coerce.number().int().min(1).max(3650).default(365),
  // Operators' client IPs and user agents (sessions, beside audit entries): kept this long, then pruned daily.
  SIGNIN_METADATA_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
  APP_DB_PASSWORD: z.string().min(16, 'must be at least 16 characters').optional(),
  INGEST_DB_PASSWORD: z.string().min(16, 'must be at least 16 characters').optional(),
  HTTPS_CERT_FILE: z.string().min(1).optional(),
  HTTPS_KEY_FILE: z.string().min(1).optional(),
  // Alerts (docs/operations.md, "Alerts"): outbound webhook for opened/escalated/closed alerts.
  ALERT_WEBHOOK_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  ALERT_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  ALERT_SWEEP_SECONDS: z.coerce.number().int().min(5).max(3600).default(30),
  // Notifications to people (docs/operations.md, "Notifications"): email over SMTP, SMS through Africa's Talking.
  NOTIFY_SMTP_URL: z
    .url({
      protocol: /^smtps?$/,
      error: 'must be smtp://user:pass@host:587 or smtps://user:pass@host:465',
    })
    .optional(),
  NOTIFY_EMAIL_FROM: z.string().min(3).optional(),
  AT_USERNAME: z.string().min(1).optional(),
  AT_API_KEY: z.string().min(8, 'must be at least 8 characters').optional(),
  AT_SENDER_ID: z.string().min(1).max(11).optional(),
  AT_BASE_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .default('https://api.africastalking.com'),
  NOTIFY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(12),
  /** Sent and given-up notifications (addresses, message texts: personal data) are kept this long. */
  NOTIFY_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
  NOTIFY_SUMMARY_HOUR: z.coerce.number().int().min(0).max(23).default(7),
  /** Weekly summaries go on this local weekday (1 = Monday … 7 = Sunday, ISO 8601). */
  NOTIFY_SUMMARY_WEEKDAY: z.coerce.number().int().min(1).max(7).default(1),
  // Dashboards: every page and chart shows times in this IANA zone, whatever the browser's.
  DASHBOARD_TIME_ZONE: z
    .string()
    .refine((zone) => {
      try {
        return (
          new Intl.DateTimeFormat('en', { timeZone: zone }).resolvedOptions().timeZone.length > 0
        );
      } catch {
        return false;
      }
    }, 'must be an IANA time zone such as Africa/Nairobi')
    .default('Africa/Nairobi'),
  // Firmware (docs/operations.md, "Firmware updates"): devices download over mTLS on this port.
  DEVICE_HTTPS_PORT: port.default(8884),
  FIRMWARE_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(16 * 1024 * 1024),
  FIRMWARE_REQUIRE_APPROVAL: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  FIRMWARE_MANIFEST_TTL_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 30)
    .default(72),
  // How often the firmware leader looks at active rollouts (timeouts, the next wave).
  FIRMWARE_TICK_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),
  // Audit store (docs/security-model.md, "Audit store"): signed checkpoints of the chain head, kept outside the database.
  AUDIT_CHECKPOINT_DIR: z.string().min(1).optional(),
  AUDIT_CHECKPOINT_MINUTES: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 60)
    .default(60),
});

export type Env = z.infer<typeof envSchema>;

export type NodeRole = Env['THAMANI_ROLE'];
export const nodeRoles: readonly NodeRole[] = ['all', 'gateway', 'api'];

export interface Config {
  readonly env: Env['THAMANI_ENV'];
  /** `gateway`: broker, ingest, firmware downloads; `api`: HTTPS API and dashboards; `all`: both. */
  readonly role: NodeRole;
  /** Several nodes on one database (ADR 0011): how often leases are checked. */
  readonly coordination: { readonly leaseCheckMs: number };
  readonly dataDir: string;
  readonly log: { readonly level: Env['LOG_LEVEL']; readonly format: 'json' | 'pretty' };
  readonly publicHostname: string;
  readonly db: {
    /** Absent: run the embedded PostgreSQL under dataDir/pg. */
    readonly url: string | undefined;
    /** A read replica for dashboards and exports; absent: the main database. */
    readonly readUrl: string | undefined;
    readonly poolMax: number;
    readonly embeddedPort: number;
    readonly rawRetentionDays: number;
    /** Password of ingest's database LOGIN role (thamani_ingest_writer); generated in development. */
    readonly ingestPassword: string | undefined;
  };
  readonly mqtt: {
    readonly host: string;
    readonly port: number;
    readonly maxPacketBytes: number;
    readonly maxConnections: number;
    readonly connectTimeoutMs: number;
    readonly keepaliveMinSeconds: number;
    readonly keepaliveMaxSeconds: number;
    readonly maxClientIdLength: number;
    readonly ratePerSecond: number;
    readonly rateBurst: number;
    readonly rateMaxWaitMs: number;
    readonly rateFloodCloseMs: number;
    readonly connectsPerWindow: number;
    readonly connectWindowMs: number;
    readonly maxPending: number;
    readonly maxPendingPerAddress: number;
    readonly handshakeTargetMs: number;
    readonly handshakeFloor: number;
    readonly revalidateIntervalMs: number;
    /** PROXY protocol v2 from these sources only (broker/proxy-protocol.ts); undefined: off. */
    readonly proxyProtocol: { readonly trustedProxies: readonly string[] } | undefined;
  };
  /** Several gateway nodes on one Redis (ADR 0010); undefined: one node, in memory. */
  readonly cluster: { readonly redisUrl: string; readonly connectTimeoutMs: number } | undefined;
  readonly pki: {
    /** Undefined in development: a generated one is kept under dataDir/pki (with a warning). */
    readonly passphrase: string | undefined;
    readonly dir: string;
    readonly deviceCertDays: number;
    readonly serverCertDays: number;
    readonly enrolmentTokenHours: number;
    readonly renewalWindowDays: number;
    readonly rotationOverlapHours: number;
  };
  /** POST /enroll throttling per source address (provisioning/enrolment-guard.ts). */
  readonly enrolment: {
    readonly maxAttemptsPerAddress: number;
    readonly maxFailuresPerAddress: number;
    readonly windowMs: number;
  };
  readonly ingest: {
    readonly maxBatch: number;
    readonly maxFutureMs: number;
    readonly backfillMs: number;
    readonly maxPayloadBytes: number;
    readonly quarantinePayloadBytes: number;
    readonly batchMaxRows: number;
    readonly batchMaxWaitMs: number;
    readonly maxPending: number;
    readonly commitTimeoutMs: number;
    readonly maxSeqJump: number;
  };
  readonly securityEvents: { readonly windowMs: number; readonly maxKeys: number };
  readonly firmware: {
    readonly devicePort: number;
    readonly maxImageBytes: number;
    readonly requireApproval: boolean;
    readonly manifestTtlHours: number;
    readonly tickMs: number;
  };
  readonly audit: {
    /** Where signed checkpoints are written (default dataDir/audit-checkpoints); copy it off the host. */
    readonly checkpointDir: string;
    readonly checkpointIntervalMs: number;
  };
  readonly alerts: {
    readonly webhookUrl: string | undefined;
    readonly webhookSecret: string | undefined;
    readonly sweepMs: number;
  };
  readonly notifications: {
    /** SMTP URL with its password: never logged. Absent: no email. */
    readonly smtpUrl: string | undefined;
    readonly emailFrom: string | undefined;
    /** Absent: no SMS. The API key is a secret: never logged. */
    readonly africasTalking:
      | {
          readonly username: string;
          readonly apiKey: string;
          readonly senderId: string | undefined;
          readonly baseUrl: string;
        }
      | undefined;
    readonly maxAttempts: number;
    readonly retentionDays: number;
    readonly summaryHour: number;
    readonly summaryWeekday: number;
  };
  readonly dashboards: { readonly timeZone: string };
  readonly https: {
    readonly host: string;
    readonly port: number;
    readonly redirectPort: number;
    readonly certFile: string | undefined;
    readonly keyFile: string | undefined;
  };
  readonly auth: {
    /** Absent in development: generated under dataDir/secrets. Required in production. */
    readonly sessionSecret: string | undefined;
    readonly sessionIdleMinutes: number;
    readonly sessionMaxHours: number;
    /** API token lifetime when none is asked for, and the longest that may be asked for. */
    readonly apiTokenDefaultDays: number;
    readonly apiTokenMaxDays: number;
    /** How long operators' sign-in metadata (IPs, user agents) is kept; pruned daily (auth/personal-data.ts). */
    readonly signInMetadataRetentionDays: number;
    /** Password of the API's database LOGIN role (thamani_api); generated in development. */
    readonly appDbPassword: string | undefined;
  };
}

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** An IPv4/IPv6 address or a CIDR block of one (MQTT_TRUSTED_PROXIES). */
function isAddressOrCidr(entry: string): boolean {
  const [address = '', bits, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n <= (family === 4 ? 32 : 128);
}

function describeValue(env: NodeJS.ProcessEnv, key: PropertyKey | undefined): string {
  if (typeof key !== 'string') return '';
  const raw = env[key];
  if (raw === undefined) return ' (not set)';
  // Never echo secrets back, even partially.
  if (/URL|PASSWORD|SECRET|TOKEN|PASSPHRASE|API_KEY/i.test(key)) return '';
  return ` (got ${JSON.stringify(raw)})`;
}

/** Secrets may come as files (Docker/Kubernetes secrets): KEY_FILE=/run/secrets/x sets KEY. */
const fileKeys = [
  'DATABASE_URL',
  'REDIS_URL',
  'DATABASE_READ_URL',
  'PKI_PASSPHRASE',
  'SESSION_SECRET',
  'APP_DB_PASSWORD',
  'INGEST_DB_PASSWORD',
  'ALERT_WEBHOOK_SECRET',
  'NOTIFY_SMTP_URL',
  'AT_API_KEY',
] as const;

function readSecretFiles(env: Record<string, string>, problems: string[]): void {
  for (const key of fileKeys) {
    const file = env[`${key}_FILE`];
    if (file === undefined) continue;
    if (env[key] !== undefined) {
      problems.push(`${key} and ${key}_FILE are both set: keep one`);
      continue;
    }
    try {
      env[key] = readFileSync(file, 'utf8').trim();
    } catch (err) {
      problems.push(
        `${key}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  // Treat empty strings as unset: `FOO= thamani start` should mean "use the default".
  const cleaned = Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''),
  );
  const fileProblems: string[] = [];
  readSecretFiles(cleaned, fileProblems);
  if (fileProblems.length > 0) throw new ConfigError(fileProblems);
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const key = issue.path[0];
      return `${String(key)}: ${issue.message}${describeValue(cleaned, key)}`;
    });
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  if (e.MQTT_KEEPALIVE_MIN_S > e.MQTT_KEEPALIVE_MAX_S) {
    throw new ConfigError([
      `MQTT_KEEPALIVE_MIN_S (${e.MQTT_KEEPALIVE_MIN_S}) must not exceed MQTT_KEEPALIVE_MAX_S (${e.MQTT_KEEPALIVE_MAX_S})`,
    ]);
  }
  if (e.PKI_RENEWAL_WINDOW_DAYS >= e.PKI_DEVICE_CERT_DAYS) {
    // A window as long as the certificate makes every fresh certificate renewable at once: each
    // device would renew on every connection.
    throw new ConfigError([
      `PKI_RENEWAL_WINDOW_DAYS (${e.PKI_RENEWAL_WINDOW_DAYS}) must be shorter than PKI_DEVICE_CERT_DAYS (${e.PKI_DEVICE_CERT_DAYS})`,
    ]);
  }
  const trustedProxies = e.MQTT_TRUSTED_PROXIES.split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  const badProxies = trustedProxies.filter((a) => !isAddressOrCidr(a));
  if (badProxies.length > 0 || (e.MQTT_PROXY_PROTOCOL === 'true' && trustedProxies.length === 0))
    throw new ConfigError([
      `MQTT_TRUSTED_PROXIES: ${badProxies.length > 0 ? `not an IP address or CIDR: ${badProxies.join(', ')}` : 'required with MQTT_PROXY_PROTOCOL=true (the load balancers allowed to send a PROXY header)'}`,
    ]);
  const ports = [e.MQTT_PORT, e.HTTPS_PORT, e.HTTP_REDIRECT_PORT, e.DEVICE_HTTPS_PORT];
  if (new Set(ports).size !== ports.length) {
    throw new ConfigError([
      `MQTT_PORT, HTTPS_PORT, HTTP_REDIRECT_PORT and DEVICE_HTTPS_PORT must differ (got ${ports.join(', ')})`,
    ]);
  }
  const securityProblems: string[] = [];
  if (e.DATABASE_READ_URL && !e.DATABASE_URL)
    securityProblems.push(
      'DATABASE_READ_URL: needs DATABASE_URL (a read replica of the embedded database makes no sense)',
    );
  if (e.THAMANI_ENV === 'production') {
    if (!e.SESSION_SECRET)
      securityProblems.push('SESSION_SECRET: required in production (32+ random characters)');
    if (!e.APP_DB_PASSWORD)
      securityProblems.push('APP_DB_PASSWORD: required in production (16+ random characters)');
    if (!e.INGEST_DB_PASSWORD)
      securityProblems.push('INGEST_DB_PASSWORD: required in production (16+ random characters)');
    if (!e.PKI_PASSPHRASE)
      securityProblems.push(
        'PKI_PASSPHRASE: required in production (or PKI_PASSPHRASE_FILE); development generates one under THAMANI_DATA_DIR',
      );
  }
  if (e.API_TOKEN_DEFAULT_DAYS > e.API_TOKEN_MAX_DAYS)
    securityProblems.push(
      `API_TOKEN_DEFAULT_DAYS (${e.API_TOKEN_DEFAULT_DAYS}) must not exceed API_TOKEN_MAX_DAYS (${e.API_TOKEN_MAX_DAYS})`,
    );
  if ((e.HTTPS_CERT_FILE === undefined) !== (e.HTTPS_KEY_FILE === undefined))
    securityProblems.push('HTTPS_CERT_FILE and HTTPS_KEY_FILE: set both or neither');
  if (e.ALERT_WEBHOOK_URL && !e.ALERT_WEBHOOK_SECRET)
    securityProblems.push(
      'ALERT_WEBHOOK_SECRET: required with ALERT_WEBHOOK_URL (receivers verify the X-Thamani-Signature HMAC with it)',
    );
  if (e.THAMANI_ENV === 'production' && e.ALERT_WEBHOOK_URL?.startsWith('http:'))
    securityProblems.push('ALERT_WEBHOOK_URL: must be https in production');
  if (e.NOTIFY_SMTP_URL && !e.NOTIFY_EMAIL_FROM)
    securityProblems.push(
      'NOTIFY_EMAIL_FROM: required with NOTIFY_SMTP_URL (e.g. "Thamani <alerts@example.org>")',
    );
  if ((e.AT_USERNAME === undefined) !== (e.AT_API_KEY === undefined))
    securityProblems.push('AT_USERNAME and AT_API_KEY: set both or neither');
  if (e.THAMANI_ENV === 'production' && e.AT_API_KEY && e.AT_BASE_URL.startsWith('http:'))
    securityProblems.push('AT_BASE_URL: must be https in production');
  if (securityProblems.length > 0) throw new ConfigError(securityProblems);
  const config: Config = {
    env: e.THAMANI_ENV,
    role: e.THAMANI_ROLE,
    coordination: { leaseCheckMs: e.CLUSTER_LEASE_CHECK_MS },
    dataDir: path.resolve(cwd, e.THAMANI_DATA_DIR),
    log: {
      level: e.LOG_LEVEL,
      format:
        e.LOG_FORMAT ??
        (process.stdout.isTTY && e.THAMANI_ENV !== 'production' ? 'pretty' : 'json'),
    },
    publicHostname: e.THAMANI_PUBLIC_HOSTNAME,
    db: {
      url: e.DATABASE_URL,
      readUrl: e.DATABASE_READ_URL,
      poolMax: e.DB_POOL_MAX,
      embeddedPort: e.EMBEDDED_PG_PORT,
      rawRetentionDays: e.READINGS_RAW_RETENTION_DAYS,
      ingestPassword: e.INGEST_DB_PASSWORD,
    },
    mqtt: {
      host: e.MQTT_HOST,
      port: e.MQTT_PORT,
      maxPacketBytes: e.MQTT_MAX_PACKET_BYTES,
      maxConnections: e.MQTT_MAX_CONNECTIONS,
      connectTimeoutMs: e.MQTT_CONNECT_TIMEOUT_MS,
      keepaliveMinSeconds: e.MQTT_KEEPALIVE_MIN_S,
      keepaliveMaxSeconds: e.MQTT_KEEPALIVE_MAX_S,
      maxClientIdLength: e.MQTT_MAX_CLIENT_ID_LENGTH,
      ratePerSecond: e.MQTT_RATE_PER_SECOND,
      rateBurst: e.MQTT_RATE_BURST,
      rateMaxWaitMs: e.MQTT_RATE_MAX_WAIT_MS,
      rateFloodCloseMs: e.MQTT_RATE_FLOOD_SECONDS * 1000,
      connectsPerWindow: e.MQTT_DEVICE_CONNECTS_MAX,
      connectWindowMs: e.MQTT_DEVICE_CONNECTS_WINDOW_S * 1000,
      maxPending: e.MQTT_MAX_PENDING,
      maxPendingPerAddress: e.MQTT_MAX_PENDING_PER_ADDRESS,
      handshakeTargetMs: e.MQTT_HANDSHAKE_TARGET_MS,
      handshakeFloor: e.MQTT_HANDSHAKE_FLOOR,
      revalidateIntervalMs: 30_000,
      proxyProtocol: e.MQTT_PROXY_PROTOCOL === 'true' ? { trustedProxies } : undefined,
    },
    cluster: e.REDIS_URL
      ? { redisUrl: e.REDIS_URL, connectTimeoutMs: e.REDIS_CONNECT_TIMEOUT_MS }
      : undefined,
    pki: {
      passphrase: e.PKI_PASSPHRASE,
      dir: path.join(path.resolve(cwd, e.THAMANI_DATA_DIR), 'pki'),
      deviceCertDays: e.PKI_DEVICE_CERT_DAYS,
      serverCertDays: e.PKI_SERVER_CERT_DAYS,
      enrolmentTokenHours: e.PKI_ENROLMENT_TOKEN_HOURS,
      renewalWindowDays: e.PKI_RENEWAL_WINDOW_DAYS,
      rotationOverlapHours: e.PKI_ROTATION_OVERLAP_HOURS,
    },
    enrolment: {
      maxAttemptsPerAddress: e.ENROL_MAX_PER_ADDRESS,
      maxFailuresPerAddress: e.ENROL_MAX_FAILURES_PER_ADDRESS,
      windowMs: e.ENROL_WINDOW_MINUTES * 60_000,
    },
    ingest: {
      maxBatch: e.INGEST_MAX_BATCH,
      maxFutureMs: e.INGEST_MAX_FUTURE_SECONDS * 1000,
      backfillMs: e.INGEST_BACKFILL_DAYS * 86_400_000,
      maxPayloadBytes: e.INGEST_MAX_PAYLOAD_BYTES,
      quarantinePayloadBytes: e.INGEST_QUARANTINE_PAYLOAD_BYTES,
      batchMaxRows: e.INGEST_BATCH_MAX_ROWS,
      batchMaxWaitMs: e.INGEST_BATCH_MAX_WAIT_MS,
      maxPending: e.INGEST_MAX_PENDING,
      commitTimeoutMs: e.INGEST_COMMIT_TIMEOUT_MS,
      maxSeqJump: e.INGEST_MAX_SEQ_JUMP,
    },
    securityEvents: {
      windowMs: e.SECURITY_EVENTS_WINDOW_SECONDS * 1000,
      maxKeys: e.SECURITY_EVENTS_MAX_KEYS,
    },
    firmware: {
      devicePort: e.DEVICE_HTTPS_PORT,
      maxImageBytes: e.FIRMWARE_MAX_BYTES,
      requireApproval: e.FIRMWARE_REQUIRE_APPROVAL,
      manifestTtlHours: e.FIRMWARE_MANIFEST_TTL_HOURS,
      tickMs: e.FIRMWARE_TICK_SECONDS * 1000,
    },
    audit: {
      checkpointDir: e.AUDIT_CHECKPOINT_DIR
        ? path.resolve(cwd, e.AUDIT_CHECKPOINT_DIR)
        : path.join(path.resolve(cwd, e.THAMANI_DATA_DIR), 'audit-checkpoints'),
      checkpointIntervalMs: e.AUDIT_CHECKPOINT_MINUTES * 60_000,
    },
    alerts: {
      webhookUrl: e.ALERT_WEBHOOK_URL,
      webhookSecret: e.ALERT_WEBHOOK_SECRET,
      sweepMs: e.ALERT_SWEEP_SECONDS * 1000,
    },
    notifications: {
      smtpUrl: e.NOTIFY_SMTP_URL,
      emailFrom: e.NOTIFY_EMAIL_FROM,
      africasTalking:
        e.AT_USERNAME && e.AT_API_KEY
          ? {
              username: e.AT_USERNAME,
              apiKey: e.AT_API_KEY,
              senderId: e.AT_SENDER_ID,
              baseUrl: e.AT_BASE_URL,
            }
          : undefined,
      maxAttempts: e.NOTIFY_MAX_ATTEMPTS,
      retentionDays: e.NOTIFY_RETENTION_DAYS,
      summaryHour: e.NOTIFY_SUMMARY_HOUR,
      summaryWeekday: e.NOTIFY_SUMMARY_WEEKDAY,
    },
    dashboards: { timeZone: e.DASHBOARD_TIME_ZONE },
    https: {
      host: e.HTTPS_HOST,
      port: e.HTTPS_PORT,
      redirectPort: e.HTTP_REDIRECT_PORT,
      certFile: e.HTTPS_CERT_FILE,
      keyFile: e.HTTPS_KEY_FILE,
    },
    auth: {
      sessionSecret: e.SESSION_SECRET,
      sessionIdleMinutes: e.SESSION_IDLE_MINUTES,
      sessionMaxHours: e.SESSION_MAX_HOURS,
      apiTokenDefaultDays: e.API_TOKEN_DEFAULT_DAYS,
      apiTokenMaxDays: e.API_TOKEN_MAX_DAYS,
      signInMetadataRetentionDays: e.SIGNIN_METADATA_RETENTION_DAYS,
      appDbPassword: e.APP_DB_PASSWORD,
    },
  };
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Documented in README's configuration table; kept here so the two cannot drift far. */
export const configKeys = Object.keys(envSchema.shape) as (keyof Env)[];
