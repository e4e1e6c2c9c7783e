import ipaddr from 'ipaddr.js';

type Ip = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * An address in its one canonical form, or null when `text` is not an IP address. IPv4 only in
 * dotted-quad form: ipaddr.js also reads `10.1` and `010.0.0.1` (octal) as IPv4, which a socket
 * never reports and an operator never means. IPv4-mapped IPv6 (`::ffff:10.0.0.1`, in any spelling)
 * becomes the IPv4 address, and IPv6 is written as RFC 5952 says (lower case, longest zero run as
 * `::`), which is also how Node reports a peer.
 */
export function parseAddress(text: string | undefined): Ip | null {
  if (!text) return null;
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
  if (!ipaddr.IPv6.isValid(text)) return null;
  const v6 = ipaddr.IPv6.parse(text);
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
}

/** `::ffff:10.0.0.1` and `10.0.0.1` are one client, as are `2001:DB8:0::1` and `2001:db8::1`: compare this form. */
export function normaliseAddress(address: string | undefined): string {
  const ip = parseAddress(address);
  return ip ? ip.toString() : (address ?? '').toLowerCase();
}

/**
 * A list of addresses and CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`), for the load
 * balancers allowed to send PROXY protocol headers. An IPv4 block also matches the IPv4-mapped
 * IPv6 form of its addresses (a dual-stack listener reports peers that way).
 */
export class AddressList {
  readonly #blocks: [Ip, number][] = [];
  readonly size: number;

  constructor(readonly entries: string[]) {
    for (const raw of entries) {
      const [address, bits, extra] = raw.split('/');
      const ip = parseAddress(address);
      if (!ip || extra !== undefined) throw new Error(`not an address or CIDR block: "${raw}"`);
      const max = ip.kind() === 'ipv4' ? 32 : 128;
      const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new Error(`bad prefix length in "${raw}"`);
      this.#blocks.push([ip, prefix]);
    }
    this.size = entries.length;
  }

  has(address: string): boolean {
    const ip = parseAddress(address);
    if (!ip) return false;
    return this.#blocks.some(([block, prefix]) => block.kind() === ip.kind() && ip.match(block, prefix));
  }
}
