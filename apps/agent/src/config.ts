import fs from 'node:fs';
import net from 'node:net';

export class AgentConfigError extends Error {
  readonly problems: { variable: string; message: string }[];
  constructor(problems: string[]) {
    super(`invalid agent configuration: ${problems.join('; ')}`);
    // "what: why" → the shape the CLI prints for every configuration error.
    this.problems = problems.map((p) => ({ variable: p.slice(0, p.indexOf(': ')), message: p.slice(p.indexOf(': ') + 2) }));
  }
}

export interface AgentConfig {
  brokerUrl: string;
  token: string;
  pollSeconds: number;
  idleThresholdSeconds: number;
  source: 'auto' | 'logind' | 'utmp';
  utmpPath: string;
  /** Sessions of these users are not the machine's user (service or admin accounts). */
  ignoreUsers: string[];
}

export const DEFAULT_TOKEN_FILE = '/etc/stagedoor/agent-token';

/**
 * The agent's settings, from its flags first, then the environment (`STAGEDOOR_BROKER_URL`,
 * `STAGEDOOR_AGENT_TOKEN`, `STAGEDOOR_AGENT_TOKEN_FILE`, `STAGEDOOR_AGENT_POLL_SECONDS`,
 * `STAGEDOOR_AGENT_IDLE_SECONDS`, `STAGEDOOR_AGENT_IGNORE_USERS`, `STAGEDOOR_AGENT_ALLOW_INSECURE_BROKER`),
 * then the token file. Every bad value is named at once.
 */
export function loadAgentConfig(
  flags: { broker?: string; token?: string; tokenFile?: string; poll?: string; idle?: string; source?: string; utmp?: string; ignoreUsers?: string; allowInsecureBroker?: boolean },
  env: NodeJS.ProcessEnv,
): AgentConfig {
  const problems: string[] = [];
  const brokerUrl = flags.broker ?? env.STAGEDOOR_BROKER_URL ?? '';
  const allowInsecure = flags.allowInsecureBroker === true || env.STAGEDOOR_AGENT_ALLOW_INSECURE_BROKER === 'true';
  try {
    const url = new URL(brokerUrl);
    if (!/^https?:$/.test(url.protocol)) problems.push(`broker URL: must be http(s) (got "${brokerUrl}")`);
    // The agent's bearer token and the user's sessions go in every request: in clear text only
    // where no one else can listen (loopback), or when the operator says so.
    else if (url.protocol === 'http:' && !allowInsecure && !isLoopbackHost(url.hostname)) {
      problems.push(`broker URL: ${brokerUrl} is plain http:// to another host, so the agent token would cross the network in clear text; use https://, or --allow-insecure-broker (STAGEDOOR_AGENT_ALLOW_INSECURE_BROKER=true) for a network you trust`);
    }
  } catch {
    problems.push(`broker URL: --broker or STAGEDOOR_BROKER_URL must be a URL (got "${brokerUrl}")`);
  }
  let token = flags.token ?? env.STAGEDOOR_AGENT_TOKEN;
  const tokenFile = flags.tokenFile ?? env.STAGEDOOR_AGENT_TOKEN_FILE ?? DEFAULT_TOKEN_FILE;
  if (!token) {
    try {
      token = fs.readFileSync(tokenFile, 'utf8').trim();
    } catch {
      problems.push(`agent token: give --token, STAGEDOOR_AGENT_TOKEN or a token file (${tokenFile} is not readable)`);
    }
  }
  if (token && !/^sda_[A-Za-z0-9_-]{16,}$/.test(token)) problems.push('agent token: not an agent token (they start with sda_)');
  const num = (name: string, v: string | undefined, def: number, min: number) => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) problems.push(`${name}: must be a number ≥ ${min} (got "${v}")`);
    return n;
  };
  const pollSeconds = num('poll seconds', flags.poll ?? env.STAGEDOOR_AGENT_POLL_SECONDS, 10, 0.2);
  const idleThresholdSeconds = num('idle seconds', flags.idle ?? env.STAGEDOOR_AGENT_IDLE_SECONDS, 300, 1);
  const source = (flags.source ?? 'auto') as AgentConfig['source'];
  if (!['auto', 'logind', 'utmp'].includes(source)) problems.push(`source: auto, logind or utmp (got "${source}")`);
  if (problems.length) throw new AgentConfigError(problems);
  const ignoreUsers = (flags.ignoreUsers ?? env.STAGEDOOR_AGENT_IGNORE_USERS ?? '').split(',').map((u) => u.trim()).filter(Boolean);
  return { brokerUrl, token: token!, pollSeconds, idleThresholdSeconds, source, utmpPath: flags.utmp ?? '/var/run/utmp', ignoreUsers };
}

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4'); // also matches the IPv4-mapped forms
LOOPBACK.addAddress('::1', 'ipv6');

/** localhost, 127.0.0.0/8 and ::1 never leave the machine. */
function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost') return true;
  const family = net.isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 6 ? 'ipv6' : 'ipv4');
}
