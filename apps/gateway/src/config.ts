import os from 'node:os';
import path from 'node:path';
import { AddressList, parseAddress } from './addresses.ts';
import { LOG_LEVELS, type LogLevel } from './log.ts';
import { DEFAULT_HALF_CLOSE_SECONDS, type RelayEngineChoice, type RelaySettings } from './native-relay.ts';

/** Everything `stagedoor gateway` reads from the environment; parsed once, every bad variable named. */
export interface GatewayConfig {
  brokerUrls: string[];
  enrollToken: string | undefined;
  name: string;
  portRangeStart: number;
  portRangeEnd: number;
  listenHost: string;
  dataDir: string;
  failClosedMs: number;
  lingerMs: number;
  connectTimeoutMs: number;
  proxyProtocol: { enabled: boolean; sources: AddressList };
  workers: number;
  /** Which byte mover relays sessions, and its threads per process. */
  relay: RelaySettings & { halfCloseSeconds: number };
  /** The routed single-port modes (ADR 0017): each listener's port, or null when it is off. */
  routed: RoutedConfig;
  logLevel: LogLevel;
  /** Settings that are read no more, to be logged as warnings at start. */
  notices: string[];
}

export interface RoutedConfig {
  rdpPort: number | null;
  sshPort: number | null;
  tlsPort: number | null;
  httpsPort: number | null;
  /** Certificate and key files of the HTTPS (tunnel) listener; both or neither (then generated). */
  tlsCertFile: string | null;
  tlsKeyFile: string | null;
  claimTimeoutMs: number;
}

export class GatewayConfigError extends Error {
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(`invalid configuration: ${problems.map((p) => `${p.variable}: ${p.message}`).join('; ')}`);
    this.name = 'GatewayConfigError';
  }
}

/** Every variable, its default and meaning: the README table is written from this. */
export const GATEWAY_VARIABLES = {
  STAGEDOOR_BROKER_URLS: 'comma-separated broker URLs (https://; http:// only on loopback or with STAGEDOOR_GATEWAY_ALLOW_INSECURE_BROKER); the channel moves to the next on loss — required',
  STAGEDOOR_GATEWAY_ALLOW_INSECURE_BROKER: '`true` allows http:// broker URLs beyond loopback: the credential and every grant cross the network in clear text (default false)',
  STAGEDOOR_GATEWAY_ENROLL_TOKEN: 'one-time enrolment token (first start only; or `--enroll <token>`)',
  STAGEDOOR_GATEWAY_NAME: 'name to register under (default: the host name)',
  STAGEDOOR_GATEWAY_PORTS: 'port range for grants (default 20000-20999)',
  STAGEDOOR_GATEWAY_LISTEN_HOST: 'address the grant ports listen on (default 0.0.0.0)',
  STAGEDOOR_GATEWAY_DATA_DIR: 'where the credential is kept (default ./.stagedoor-gateway)',
  STAGEDOOR_GATEWAY_FAIL_CLOSED_SECONDS: 'refuse new connections after this long without any broker (default 60)',
  STAGEDOOR_GATEWAY_LINGER_SECONDS: 'a finished grant\'s port refuses and reports connections this long before closing (default 30)',
  STAGEDOOR_GATEWAY_CONNECT_TIMEOUT_SECONDS: 'connecting to a workstation gives up after this long (default 10)',
  STAGEDOOR_GATEWAY_PROXY_PROTOCOL: '`on`: every connection starts with a PROXY protocol v2 header (behind a network load balancer); default off',
  STAGEDOOR_GATEWAY_PROXY_SOURCES: 'addresses/CIDRs of the load balancers allowed to send PROXY headers; required with PROXY protocol on (a connection from any other peer is refused)',
  STAGEDOOR_GATEWAY_WORKERS: 'relay processes (default 1); each grant\'s port belongs to one of them, so connection setup uses every core',
  STAGEDOOR_GATEWAY_RELAY: '`auto` (default): the native relay (epoll + splice) when it was built at install, else JavaScript; `native` refuses to start without it; `js`',
  STAGEDOOR_GATEWAY_RELAY_THREADS: 'native relay threads per relay process (default 1)',
  STAGEDOOR_GATEWAY_HALF_CLOSE_SECONDS: `after one side of a session ends its sending, the session ends once the other side has been silent this long (default ${DEFAULT_HALF_CLOSE_SECONDS}; 0: no bound)`,
  STAGEDOOR_GATEWAY_RDP_PORT: 'routed RDP listener, by routing token (default 3389; `off` for none)',
  STAGEDOOR_GATEWAY_SSH_PORT: 'routed SSH jump host (default 22; `off` for none)',
  STAGEDOOR_GATEWAY_TLS_PORT: 'routed TLS listener, by SNI host name (default 8443; `off` for none)',
  STAGEDOOR_GATEWAY_HTTPS_PORT: 'routed HTTPS WebSocket tunnel and GET /healthz (default 443; `off` for none)',
  STAGEDOOR_GATEWAY_TLS_CERT: 'PEM certificate (chain) file of the HTTPS listener; with STAGEDOOR_GATEWAY_TLS_KEY (default: generated self-signed)',
  STAGEDOOR_GATEWAY_TLS_KEY: 'PEM private key file of the HTTPS listener',
  STAGEDOOR_GATEWAY_CLAIM_TIMEOUT_SECONDS: 'a routed connection waits this long for the broker to confirm its grant, then is refused (default 5)',
  STAGEDOOR_LOG_LEVEL: 'log level (default info)',
} as const;

export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof typeof GATEWAY_VARIABLES, string>> = {}): GatewayConfig {
  const get = (k: keyof typeof GATEWAY_VARIABLES): string | undefined => {
    const v = overrides[k] ?? env[k];
    return v === '' ? undefined : v;
  };
  const problems: { variable: string; message: string }[] = [];
  const bad = (variable: string, message: string) => problems.push({ variable, message });
  const seconds = (k: keyof typeof GATEWAY_VARIABLES, dflt: number) => {
    const raw = get(k);
    if (raw === undefined) return dflt * 1000;
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) bad(k, `must be a positive number of seconds (got ${JSON.stringify(raw)})`);
    return n * 1000;
  };

  const brokerUrls = (get('STAGEDOOR_BROKER_URLS') ?? '').split(',').map((u) => u.trim()).filter(Boolean);
  if (brokerUrls.length === 0) bad('STAGEDOOR_BROKER_URLS', 'is required: the URL of at least one broker node');
  const allowInsecure = get('STAGEDOOR_GATEWAY_ALLOW_INSECURE_BROKER') ?? 'false';
  if (allowInsecure !== 'true' && allowInsecure !== 'false') bad('STAGEDOOR_GATEWAY_ALLOW_INSECURE_BROKER', `must be true or false (got ${JSON.stringify(allowInsecure)})`);
  for (const u of brokerUrls) {
    if (!/^https?:\/\/[^/]+/.test(u)) bad('STAGEDOOR_BROKER_URLS', `must be http:// or https:// URLs (got ${JSON.stringify(u)})`);
    // The channel carries the gateway's credential and every grant (client address, workstation):
    // in clear text only where no one else can listen, or when the operator says so.
    else if (u.startsWith('http://') && allowInsecure !== 'true' && !isLoopbackUrl(u)) {
      bad('STAGEDOOR_BROKER_URLS', `${u} is plain http:// to another host: the gateway credential and every grant would cross the network in clear text. Use https://, or set STAGEDOOR_GATEWAY_ALLOW_INSECURE_BROKER=true for a network you trust`);
    }
  }

  const ports = get('STAGEDOOR_GATEWAY_PORTS') ?? '20000-20999';
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(ports);
  const [portRangeStart, portRangeEnd] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  if (!m || portRangeStart < 1 || portRangeEnd > 65535 || portRangeStart > portRangeEnd) bad('STAGEDOOR_GATEWAY_PORTS', `must be a range like 20000-20999 within 1-65535 (got ${JSON.stringify(ports)})`);

  const proxy = get('STAGEDOOR_GATEWAY_PROXY_PROTOCOL') ?? 'off';
  if (proxy !== 'on' && proxy !== 'off') bad('STAGEDOOR_GATEWAY_PROXY_PROTOCOL', `must be on or off (got ${JSON.stringify(proxy)})`);
  let sources = new AddressList([]);
  try {
    sources = new AddressList((get('STAGEDOOR_GATEWAY_PROXY_SOURCES') ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  } catch (err) {
    bad('STAGEDOOR_GATEWAY_PROXY_SOURCES', (err as Error).message);
  }
  // A PROXY header names the client, and the grant check trusts that name: from any peer, anyone
  // could claim a granted client's address. So there is no "any" default; `0.0.0.0/0,::/0` says it.
  if (proxy === 'on' && sources.size === 0 && !problems.some((p) => p.variable === 'STAGEDOOR_GATEWAY_PROXY_SOURCES')) {
    bad('STAGEDOOR_GATEWAY_PROXY_SOURCES', 'is required with STAGEDOOR_GATEWAY_PROXY_PROTOCOL=on: the addresses or CIDR blocks of the load balancers (e.g. 10.0.0.0/24); a PROXY header from any other peer would name any client it likes');
  }

  const workersRaw = get('STAGEDOOR_GATEWAY_WORKERS') ?? '1';
  const workers = Number(workersRaw);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) bad('STAGEDOOR_GATEWAY_WORKERS', `must be a whole number from 1 to 64 (got ${JSON.stringify(workersRaw)})`);
  const engine = (get('STAGEDOOR_GATEWAY_RELAY') ?? 'auto') as RelayEngineChoice;
  if (!['auto', 'native', 'js'].includes(engine)) bad('STAGEDOOR_GATEWAY_RELAY', `must be auto, native or js (got ${JSON.stringify(engine)})`);
  const threadsRaw = get('STAGEDOOR_GATEWAY_RELAY_THREADS') ?? '1';
  const threads = Number(threadsRaw);
  if (!Number.isInteger(threads) || threads < 1 || threads > 16) bad('STAGEDOOR_GATEWAY_RELAY_THREADS', `must be a whole number from 1 to 16 (got ${JSON.stringify(threadsRaw)})`);
  const halfCloseRaw = get('STAGEDOOR_GATEWAY_HALF_CLOSE_SECONDS') ?? String(DEFAULT_HALF_CLOSE_SECONDS);
  const halfCloseSeconds = Number(halfCloseRaw);
  if (!/^\d{1,6}$/.test(halfCloseRaw)) bad('STAGEDOOR_GATEWAY_HALF_CLOSE_SECONDS', `must be a whole number of seconds, 0 for no bound (got ${JSON.stringify(halfCloseRaw)})`);
  const listenerPort = (k: keyof typeof GATEWAY_VARIABLES, dflt: number): number | null => {
    const raw = get(k) ?? String(dflt);
    if (raw === 'off') return null;
    const n = Number(raw);
    if (!/^\d{1,5}$/.test(raw) || n < 1 || n > 65535) bad(k, `must be a port from 1 to 65535, or off (got ${JSON.stringify(raw)})`);
    return n;
  };
  const routed: RoutedConfig = {
    rdpPort: listenerPort('STAGEDOOR_GATEWAY_RDP_PORT', 3389),
    sshPort: listenerPort('STAGEDOOR_GATEWAY_SSH_PORT', 22),
    tlsPort: listenerPort('STAGEDOOR_GATEWAY_TLS_PORT', 8443),
    httpsPort: listenerPort('STAGEDOOR_GATEWAY_HTTPS_PORT', 443),
    tlsCertFile: get('STAGEDOOR_GATEWAY_TLS_CERT') ? path.resolve(get('STAGEDOOR_GATEWAY_TLS_CERT')!) : null,
    tlsKeyFile: get('STAGEDOOR_GATEWAY_TLS_KEY') ? path.resolve(get('STAGEDOOR_GATEWAY_TLS_KEY')!) : null,
    claimTimeoutMs: seconds('STAGEDOOR_GATEWAY_CLAIM_TIMEOUT_SECONDS', 5),
  };
  if ((routed.tlsCertFile === null) !== (routed.tlsKeyFile === null)) {
    bad(routed.tlsCertFile ? 'STAGEDOOR_GATEWAY_TLS_KEY' : 'STAGEDOOR_GATEWAY_TLS_CERT', 'STAGEDOOR_GATEWAY_TLS_CERT and STAGEDOOR_GATEWAY_TLS_KEY go together: set both, or neither');
  }
  const given = Object.entries({ STAGEDOOR_GATEWAY_RDP_PORT: routed.rdpPort, STAGEDOOR_GATEWAY_SSH_PORT: routed.sshPort, STAGEDOOR_GATEWAY_TLS_PORT: routed.tlsPort, STAGEDOOR_GATEWAY_HTTPS_PORT: routed.httpsPort }).filter(([, v]) => v !== null);
  for (const [i, [k, v]] of given.entries()) {
    const other = given.slice(0, i).find(([, w]) => w === v);
    if (other) bad(k, `is the same port as ${other[0]} (${v})`);
    // A grant port would then fail to open, or this listener would: say so at start instead.
    else if (m && v! >= portRangeStart && v! <= portRangeEnd) bad(k, `${v} lies in STAGEDOOR_GATEWAY_PORTS (${ports}), which port-forward grants use`);
  }
  const logLevel = (get('STAGEDOOR_LOG_LEVEL') ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) bad('STAGEDOOR_LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);

  const name = get('STAGEDOOR_GATEWAY_NAME') ?? os.hostname();
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) bad('STAGEDOOR_GATEWAY_NAME', 'may contain letters, digits and . _ - only (at most 128)');
  const listenHost = get('STAGEDOOR_GATEWAY_LISTEN_HOST') ?? '0.0.0.0';
  const config: GatewayConfig = {
    brokerUrls,
    enrollToken: get('STAGEDOOR_GATEWAY_ENROLL_TOKEN'),
    name,
    portRangeStart,
    portRangeEnd,
    listenHost,
    dataDir: path.resolve(get('STAGEDOOR_GATEWAY_DATA_DIR') ?? './.stagedoor-gateway'),
    failClosedMs: seconds('STAGEDOOR_GATEWAY_FAIL_CLOSED_SECONDS', 60),
    lingerMs: seconds('STAGEDOOR_GATEWAY_LINGER_SECONDS', 30),
    connectTimeoutMs: seconds('STAGEDOOR_GATEWAY_CONNECT_TIMEOUT_SECONDS', 10),
    proxyProtocol: { enabled: proxy === 'on', sources },
    workers,
    relay: { engine, threads, halfCloseSeconds },
    routed,
    logLevel,
    notices: env.STAGEDOOR_GATEWAY_PUBLIC_ADDRESS
      ? ['STAGEDOOR_GATEWAY_PUBLIC_ADDRESS is ignored: the address clients dial comes from the enrolment record the admin made (ADR 0016)']
      : [],
  };
  if (problems.length) throw new GatewayConfigError(problems);
  return config;
}

/** http://localhost, 127.0.0.0/8 and ::1 never leave the host. */
function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return false;
  }
  if (host.toLowerCase() === 'localhost') return true;
  const ip = parseAddress(host);
  return ip !== null && ip.range() === 'loopback';
}
