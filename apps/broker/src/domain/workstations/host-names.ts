import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { DomainError } from '../errors.ts';

/** Long enough for a slow site resolver, short enough that a user's connect does not hang on it. */
const LOOKUP_TIMEOUT_MS = 5_000;

/** Resolves a host name to one address (IPv4 first); throws `HostUnresolvableError`. */
export type HostResolver = (name: string) => Promise<string>;

/**
 * A static host's DNS name did not resolve when a user connected: the connect is refused with
 * this (nothing of it is written) and the admin finds it in the audit log.
 */
export class HostUnresolvableError extends DomainError {
  readonly code = 'host_unresolvable';
  constructor(
    readonly workstation: { id: string; name: string },
    readonly hostName: string,
    why: string,
  ) {
    super(`the desktop "${workstation.name}" cannot be reached: its address ${hostName} ${why}; ask your administrator to check the host's DNS name`, { workstation: workstation.name, hostName });
  }
}

/** Which columns an address typed by an admin fills: an IP literal, or a DNS name resolved at connect time. */
export function addressColumns(address: string): { privateAddress: string | null; dnsName: string | null } {
  return isIP(address) ? { privateAddress: address, dnsName: null } : { privateAddress: null, dnsName: address };
}

/** What the admin typed, for the API and comparisons: the name when there is one, else the IP. */
export function addressOf(w: { privateAddress: string | null; dnsName: string | null }): string | null {
  return w.dnsName ?? w.privateAddress;
}

/**
 * The system resolver (getaddrinfo: /etc/hosts, then DNS; what the machine's other programs see),
 * IPv4 answers first since gateways and grants are most often IPv4-only. Never throws anything but
 * `HostUnresolvableError` (through `resolveFor`).
 */
export const systemResolver: HostResolver = async (name) => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' })), LOOKUP_TIMEOUT_MS);
  });
  try {
    const found = await Promise.race([lookup(name, { verbatim: false }), timeout]);
    return found.address;
  } finally {
    clearTimeout(timer);
  }
};

/** Resolve a workstation's DNS name, turning resolver failures into the one typed error people read. */
export async function resolveFor(resolver: HostResolver, ws: { id: string; name: string; dnsName: string }): Promise<string> {
  try {
    return await resolver(ws.dnsName);
  } catch (err) {
    if (err instanceof HostUnresolvableError) throw err;
    const code = (err as { code?: string }).code;
    const why =
      code === 'ENOTFOUND' || code === 'ENODATA'
        ? `does not resolve (${code}: no such name in DNS or /etc/hosts)`
        : code === 'ETIMEOUT'
          ? `did not resolve within ${LOOKUP_TIMEOUT_MS / 1000} s (DNS did not answer)`
          : `could not be resolved (${code ?? (err as Error).message})`;
    throw new HostUnresolvableError(ws, ws.dnsName, why);
  }
}
