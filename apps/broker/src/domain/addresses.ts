import ipaddr from 'ipaddr.js';

/**
 * Client and target addresses, parsed by ipaddr.js (the maintained library, not a hand-written
 * expander): `::ffff:10.0.0.1` and `10.0.0.1` are one client, and IPv6 is compared in one
 * spelling. IPv4 only in dotted-quad form: ipaddr.js alone also reads `010.0.0.1` as 8.0.0.1.
 */
export function parseAddress(address: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(address)) return ipaddr.IPv4.parse(address);
  if (!ipaddr.IPv6.isValid(address)) return null;
  const v6 = ipaddr.IPv6.parse(address);
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
}

/** The plain, canonical form of an address (`::ffff:10.0.0.1` → `10.0.0.1`), or the input lower-cased if it is none. */
export function plainAddress(address: string): string {
  return parseAddress(address)?.toString() ?? address.toLowerCase();
}

/** IPv4 as is; IPv6 by its /64, since one client usually holds a whole /64 (`2001:db8:0:0::/64`). Null if not an address. */
export function clientKey(address: string): string | null {
  const ip = parseAddress(address);
  if (!ip) return null;
  if (ip.kind() === 'ipv4') return ip.toString();
  return `${(ip as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16)).join(':')}::/64`;
}
