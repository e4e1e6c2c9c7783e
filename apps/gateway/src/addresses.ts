import net from 'node:net';

/** `::ffff:10.0.0.1` and `10.0.0.1` are one client: compare the plain form. */
export function normaliseAddress(address: string | undefined): string {
  if (!address) return '';
  const plain = address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
  return plain.toLowerCase();
}

/**
 * A list of addresses and CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`), for the load
 * balancers allowed to send PROXY protocol headers.
 */
export class AddressList {
  readonly #list = new net.BlockList();
  readonly size: number;

  constructor(readonly entries: string[]) {
    for (const raw of entries) {
      const [address, bits] = raw.split('/');
      const family = net.isIPv6(address!) ? 'ipv6' : 'ipv4';
      if (!net.isIP(address!)) throw new Error(`not an address or CIDR block: "${raw}"`);
      if (bits === undefined) this.#list.addAddress(address!, family);
      else {
        const prefix = Number(bits);
        if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 'ipv4' ? 32 : 128)) throw new Error(`bad prefix length in "${raw}"`);
        this.#list.addSubnet(address!, prefix, family);
      }
    }
    this.size = entries.length;
  }

  has(address: string): boolean {
    const a = normaliseAddress(address);
    if (!net.isIP(a)) return false;
    return this.#list.check(a, net.isIPv6(a) ? 'ipv6' : 'ipv4');
  }
}
