import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const port = z.coerce
  .number({ error: 'must be a TCP port number' })
  .int('must be a whole number')
  .min(1, 'must be between 1 and 65535')
  .max(65535, 'must be between 1 and 65535');

const positiveInt = (what: string) => z.coerce.number({ error: `must be ${what}` }).int(`must be ${what}`).positive(`must be ${what}`);

const csv = z
  .string()
  .transform((s) => s.split(',').map((p) => p.trim()).filter(Boolean));

/** Every variable the broker reads, with its default. The README table is written from this. */
const envSchema = z.object({
  PORT: port.default(8080),
  STAGEDOOR_HOST: z.string().min(1, 'must not be empty').default('127.0.0.1'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  STAGEDOOR_DB_POOL_SIZE: positiveInt('a positive whole number').default(10),
  STAGEDOOR_DATA_DIR: z.string().min(1, 'must not be empty').default('./.stagedoor'),
  STAGEDOOR_ADMIN_PASSWORD: z.string().min(8, 'must be at least 8 characters').max(1024).optional(),
  STAGEDOOR_SECRET_KEY: z
    .string()
    .refine((s) => decodeKey(s) !== null, 'must be 32 bytes as 64 hex characters or base64')
    .optional(),
  STAGEDOOR_SECRET_KEY_PREVIOUS: csv
    .refine((keys) => keys.every((k) => decodeKey(k) !== null), 'must be a comma-separated list of keys, each 32 bytes as 64 hex characters or base64')
    .optional(),
  STAGEDOOR_METRICS_LISTEN: z
    .string()
    .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:9464 or [::1]:9464')
    .refine((v) => hostPort(v) !== null, 'the port must be between 1 and 65535')
    .optional(),
  STAGEDOOR_METRICS_TOKEN: z.string().regex(/^\S{16,512}$/, 'must be 16 to 512 characters without spaces').optional(),
  STAGEDOOR_LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  STAGEDOOR_NODE_ID: z.string().min(1).max(200).default(`${os.hostname()}-${process.pid}`),
  STAGEDOOR_TRUSTED_PROXIES: csv.default([]),
  STAGEDOOR_TLS_CERT: z.string().min(1, 'must not be empty').optional(),
  STAGEDOOR_TLS_KEY: z.string().min(1, 'must not be empty').optional(),
  STAGEDOOR_SESSION_IDLE_MINUTES: positiveInt('a positive number of minutes').default(480),
  STAGEDOOR_SESSION_MAX_HOURS: positiveInt('a positive number of hours').default(24),
  STAGEDOOR_API_TOKEN_DEFAULT_DAYS: positiveInt('a positive number of days').default(90),
  STAGEDOOR_API_TOKEN_MAX_DAYS: positiveInt('a positive number of days').max(3650, 'must be at most 3650').default(365),
  STAGEDOOR_BODY_LIMIT_BYTES: positiveInt('a positive number of bytes').default(1024 * 1024),
  STAGEDOOR_LOGIN_RATE_PER_MINUTE: positiveInt('a positive whole number').default(30),
  STAGEDOOR_LOCKOUT_THRESHOLD: positiveInt('a positive whole number').default(5),
  STAGEDOOR_LOCKOUT_ADDRESS_THRESHOLD: positiveInt('a positive whole number').default(50),
  STAGEDOOR_LOCKOUT_WINDOW_MINUTES: positiveInt('a positive number of minutes').default(15),
  STAGEDOOR_LOCKOUT_MINUTES: positiveInt('a positive number of minutes').default(15),
  STAGEDOOR_MFA_TIMEOUT_SECONDS: positiveInt('a positive number of seconds').max(3600, 'must be at most 3600').default(300),
  STAGEDOOR_PUBLIC_URL: z
    .string()
    .url('must be a URL such as https://stagedoor.example.com')
    .regex(/^https?:\/\/[^/?#]+\/?$/, 'must be scheme://host[:port] without a path')
    .transform((u) => u.replace(/\/$/, ''))
    .optional(),
  STAGEDOOR_MFA_MAX_ATTEMPTS: positiveInt('a positive whole number').max(20, 'must be at most 20').default(5),
  STAGEDOOR_AUDIT_RETENTION_DAYS: z.coerce.number({ error: 'must be a number of days' }).int('must be a whole number of days').min(0, 'must be 0 (keep forever) or more days').default(400),
  STAGEDOOR_AUDIT_REFUSALS_PER_MINUTE: positiveInt('a positive whole number').default(20),
  STAGEDOOR_HOUSEKEEPING_INTERVAL_SECONDS: z.coerce.number({ error: 'must be a number of seconds' }).positive('must be positive').default(60),
  STAGEDOOR_TIMERS_INTERVAL_SECONDS: z.coerce.number({ error: 'must be a number of seconds' }).positive('must be positive').default(1),
  STAGEDOOR_JOBS: z.enum(['on', 'off'], { error: 'must be on or off' }).default('on'),
  STAGEDOOR_SANDBOX_EC2_PORT: port.default(4599),
  STAGEDOOR_GATEWAY_HEARTBEAT_SECONDS: z.coerce.number({ error: 'must be a number of seconds' }).positive('must be positive').max(300, 'must be at most 300').default(5),
  STAGEDOOR_GATEWAY_STALE_SECONDS: z.coerce.number({ error: 'must be a number of seconds' }).positive('must be positive').default(20),
  STAGEDOOR_GATEWAY_LOST_SECONDS: z.coerce.number({ error: 'must be a number of seconds' }).positive('must be positive').default(300),
  STAGEDOOR_GATEWAY_RECONCILE_SECONDS: z.coerce.number({ error: 'must be a number of seconds' }).positive('must be positive').default(5),
  STAGEDOOR_GRANT_CONNECT_BY_SECONDS: z.coerce.number({ error: 'must be a number of seconds' }).int('must be whole seconds').min(15, 'must be at least 15').max(3600, 'must be at most 3600').default(120),
  STAGEDOOR_DEV_GATEWAY_PORTS: z
    .string()
    .regex(/^(off|\d{1,5}-\d{1,5})$/, 'must be off or a port range like 20000-20099')
    .refine((v) => v === 'off' || portRange(v) !== null, 'must be a port range within 1-65535, start before end')
    .default('20000-20099'),
});

export type Env = z.infer<typeof envSchema>;

export interface Config {
  port: number;
  host: string;
  database: { kind: 'postgres'; url: string; poolSize: number } | { kind: 'pglite'; dataDir: string };
  dataDir: string;
  adminPassword: string | undefined;
  secretKey: Buffer | undefined;
  /** Keys that sealed secrets before the current one: they still open them (ADR 0015, `stagedoor admin rotate-secret-key`). */
  previousSecretKeys: Buffer[];
  logLevel: (typeof LOG_LEVELS)[number];
  /**
   * Where `/metrics` is served: on a listener of its own (`listen`, and then not on the main one),
   * and/or behind a bearer token. With neither, it is not served at all (docs/security.md).
   */
  metrics: { listen: { host: string; port: number } | null; token: string | null };
  nodeId: string;
  trustedProxies: string[];
  /** HTTPS served by the broker itself: PEM files, read at start and again whenever they change (http/tls.ts). */
  tls: { certFile: string; keyFile: string } | null;
  /**
   * `secureCookie`: `always` marks the session cookie Secure whatever the request looked like (the
   * production role, `stagedoor broker`); `when-https` only on HTTPS, so `stagedoor dev` works on plain http.
   */
  session: { idleMinutes: number; maxHours: number; secureCookie: 'always' | 'when-https' };
  /** API tokens: the lifetime of one created without `expiresInDays`, and the longest any token lives. */
  apiTokens: { defaultDays: number; maxDays: number };
  bodyLimitBytes: number;
  loginRatePerMinute: number;
  /** Lockout (shared by every node through the database) and the second sign-in step. */
  signIn: {
    lockout: { accountThreshold: number; addressThreshold: number; windowMs: number; durationMs: number };
    mfa: { pendingTtlMs: number; maxAttempts: number };
    /**
     * Where browsers reach this broker (behind the ALB: its https:// name). SSO redirect URIs are built
     * from it, never from the Host header, which a client chooses. Null: SSO sign-in is unavailable.
     */
    publicUrl: string | null;
  };
  jobs: { enabled: boolean; housekeepingIntervalMs: number; timersIntervalMs: number };
  /** Audit trail retention (0 days: forever) and the per-address cap on refusal rows. */
  audit: { retentionDays: number; refusalsPerAddressPerMinute: number };
  /** How the broker treats gateways (heartbeat expected, unhealthy after, sessions lost after) and how often it reconciles. */
  gateway: { heartbeatSeconds: number; staleSeconds: number; lostSeconds: number; reconcileIntervalMs: number; connectBySeconds: number };
  /** `stagedoor dev` runs one gateway in-process on these ports (null: none). */
  devGateway: { portRangeStart: number; portRangeEnd: number } | null;
  /** `stagedoor dev --sandbox`: the EC2 emulator's port. */
  sandbox: { ec2Port: number };
}

export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(`invalid configuration: ${problems.map((p) => `${p.variable}: ${p.message}`).join('; ')}`);
    this.name = 'ConfigError';
  }
}

function decodeKey(value: string): Buffer | null {
  if (/^[0-9a-fA-F]{64}$/.test(value)) return Buffer.from(value, 'hex');
  const b = Buffer.from(value, 'base64');
  return b.length === 32 ? b : null;
}

/** Parse the environment once; callers get a typed `Config` or a `ConfigError` naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Record<string, string> = {}): Config {
  const input = { ...pickDefined(env), ...overrides };
  // Empty strings mean "unset", as in most twelve-factor tools (`DATABASE_URL= npm start`).
  for (const [k, v] of Object.entries(input)) if (v === '') delete (input as Record<string, unknown>)[k];
  const parsed = envSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => {
        const variable = String(i.path[0] ?? 'environment');
        const got = (input as Record<string, unknown>)[variable];
        const shown = variable.includes('PASSWORD') || variable.includes('SECRET') || variable.includes('TOKEN') || got === undefined ? '' : ` (got ${JSON.stringify(got)})`;
        return { variable, message: `${i.message}${shown}` };
      }),
    );
  }
  const e = parsed.data;
  if (e.STAGEDOOR_API_TOKEN_DEFAULT_DAYS > e.STAGEDOOR_API_TOKEN_MAX_DAYS) {
    throw new ConfigError([{ variable: 'STAGEDOOR_API_TOKEN_DEFAULT_DAYS', message: `must not exceed STAGEDOOR_API_TOKEN_MAX_DAYS (${e.STAGEDOOR_API_TOKEN_MAX_DAYS}) (got ${e.STAGEDOOR_API_TOKEN_DEFAULT_DAYS})` }]);
  }
  if (!e.STAGEDOOR_TLS_CERT !== !e.STAGEDOOR_TLS_KEY) {
    const missing = e.STAGEDOOR_TLS_CERT ? 'STAGEDOOR_TLS_KEY' : 'STAGEDOOR_TLS_CERT';
    throw new ConfigError([{ variable: missing, message: 'must be set too: HTTPS needs both the certificate (STAGEDOOR_TLS_CERT) and its key (STAGEDOOR_TLS_KEY)' }]);
  }
  const dataDir = path.resolve(e.STAGEDOOR_DATA_DIR);
  return {
    port: e.PORT,
    host: e.STAGEDOOR_HOST,
    database: e.DATABASE_URL
      ? { kind: 'postgres', url: e.DATABASE_URL, poolSize: e.STAGEDOOR_DB_POOL_SIZE }
      : { kind: 'pglite', dataDir: path.join(dataDir, 'db') },
    dataDir,
    adminPassword: e.STAGEDOOR_ADMIN_PASSWORD,
    secretKey: e.STAGEDOOR_SECRET_KEY ? (decodeKey(e.STAGEDOOR_SECRET_KEY) ?? undefined) : undefined,
    previousSecretKeys: (e.STAGEDOOR_SECRET_KEY_PREVIOUS ?? []).map((k) => decodeKey(k)!),
    logLevel: e.STAGEDOOR_LOG_LEVEL,
    metrics: { listen: e.STAGEDOOR_METRICS_LISTEN ? hostPort(e.STAGEDOOR_METRICS_LISTEN) : null, token: e.STAGEDOOR_METRICS_TOKEN ?? null },
    nodeId: e.STAGEDOOR_NODE_ID,
    trustedProxies: e.STAGEDOOR_TRUSTED_PROXIES,
    tls: e.STAGEDOOR_TLS_CERT && e.STAGEDOOR_TLS_KEY ? { certFile: path.resolve(e.STAGEDOOR_TLS_CERT), keyFile: path.resolve(e.STAGEDOOR_TLS_KEY) } : null,
    session: { idleMinutes: e.STAGEDOOR_SESSION_IDLE_MINUTES, maxHours: e.STAGEDOOR_SESSION_MAX_HOURS, secureCookie: 'when-https' },
    apiTokens: { defaultDays: e.STAGEDOOR_API_TOKEN_DEFAULT_DAYS, maxDays: e.STAGEDOOR_API_TOKEN_MAX_DAYS },
    bodyLimitBytes: e.STAGEDOOR_BODY_LIMIT_BYTES,
    loginRatePerMinute: e.STAGEDOOR_LOGIN_RATE_PER_MINUTE,
    signIn: {
      lockout: {
        accountThreshold: e.STAGEDOOR_LOCKOUT_THRESHOLD,
        addressThreshold: e.STAGEDOOR_LOCKOUT_ADDRESS_THRESHOLD,
        windowMs: e.STAGEDOOR_LOCKOUT_WINDOW_MINUTES * 60_000,
        durationMs: e.STAGEDOOR_LOCKOUT_MINUTES * 60_000,
      },
      mfa: { pendingTtlMs: e.STAGEDOOR_MFA_TIMEOUT_SECONDS * 1000, maxAttempts: e.STAGEDOOR_MFA_MAX_ATTEMPTS },
      publicUrl: e.STAGEDOOR_PUBLIC_URL ?? null,
    },
    gateway: {
      heartbeatSeconds: e.STAGEDOOR_GATEWAY_HEARTBEAT_SECONDS,
      staleSeconds: e.STAGEDOOR_GATEWAY_STALE_SECONDS,
      lostSeconds: e.STAGEDOOR_GATEWAY_LOST_SECONDS,
      reconcileIntervalMs: e.STAGEDOOR_GATEWAY_RECONCILE_SECONDS * 1000,
      connectBySeconds: e.STAGEDOOR_GRANT_CONNECT_BY_SECONDS,
    },
    devGateway: e.STAGEDOOR_DEV_GATEWAY_PORTS === 'off' ? null : portRange(e.STAGEDOOR_DEV_GATEWAY_PORTS),
    jobs: {
      enabled: e.STAGEDOOR_JOBS === 'on',
      housekeepingIntervalMs: e.STAGEDOOR_HOUSEKEEPING_INTERVAL_SECONDS * 1000,
      timersIntervalMs: e.STAGEDOOR_TIMERS_INTERVAL_SECONDS * 1000,
    },
    sandbox: { ec2Port: e.STAGEDOOR_SANDBOX_EC2_PORT },
    audit: { retentionDays: e.STAGEDOOR_AUDIT_RETENTION_DAYS, refusalsPerAddressPerMinute: e.STAGEDOOR_AUDIT_REFUSALS_PER_MINUTE },
  };
}

function hostPort(value: string): { host: string; port: number } | null {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  return m && port >= 1 && port <= 65535 ? { host: m[1]!, port } : null;
}

function portRange(value: string): { portRangeStart: number; portRangeEnd: number } | null {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(value);
  if (!m) return null;
  const [start, end] = [Number(m[1]), Number(m[2])];
  return start >= 1 && end <= 65535 && start <= end ? { portRangeStart: start, portRangeEnd: end } : null;
}

function pickDefined(env: NodeJS.ProcessEnv): Record<string, string> {
  const keys = Object.keys(envSchema.shape);
  const out: Record<string, string> = {};
  for (const k of keys) {
    const v = env[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** Documentation of every variable, for the README and `stagedoor config`. */
export const CONFIG_VARIABLES = Object.keys(envSchema.shape);
