// IPv4 CIDR arithmetic and per-subnet address allocation. AWS reserves the first four
// addresses and the last one of every subnet, so a /20 offers 4091 addresses.

export interface Cidr {
  base: number;
  prefix: number;
  size: number;
}

export function ipToInt(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export function intToIp(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

export function parseCidr(cidr: string): Cidr | undefined {
  const [ip, prefixText] = cidr.split('/');
  if (ip === undefined || prefixText === undefined || !/^\d{1,2}$/.test(prefixText)) return undefined;
  const base = ipToInt(ip);
  const prefix = Number(prefixText);
  if (base === undefined || prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  if (base % size !== 0) return undefined;
  return { base, prefix, size };
}

export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return inner.base >= outer.base && inner.base + inner.size <= outer.base + outer.size;
}

const RESERVED_HEAD = 4;
const RESERVED_TAIL = 1;

/** Addresses in use in one subnet; allocation walks a cursor so each launch is O(1) amortised. */
export class IpPool {
  private readonly used = new Set<number>();
  private cursor: number;
  private readonly first: number;
  private readonly last: number;

  constructor(readonly cidr: Cidr) {
    this.first = cidr.base + RESERVED_HEAD;
    this.last = cidr.base + cidr.size - 1 - RESERVED_TAIL;
    this.cursor = this.first;
  }

  get capacity(): number {
    return Math.max(0, this.last - this.first + 1);
  }

  get available(): number {
    return this.capacity - this.used.size;
  }

  contains(ip: string): boolean {
    const value = ipToInt(ip);
    return value !== undefined && value >= this.first && value <= this.last;
  }

  isUsed(ip: string): boolean {
    const value = ipToInt(ip);
    return value !== undefined && this.used.has(value);
  }

  allocate(): string | undefined {
    if (this.available <= 0) return undefined;
    for (let step = 0; step < this.capacity; step++) {
      const candidate = this.cursor;
      this.cursor = candidate >= this.last ? this.first : candidate + 1;
      if (!this.used.has(candidate)) {
        this.used.add(candidate);
        return intToIp(candidate);
      }
    }
    return undefined;
  }

  claim(ip: string): void {
    const value = ipToInt(ip);
    if (value !== undefined) this.used.add(value);
  }

  release(ip: string): void {
    const value = ipToInt(ip);
    if (value !== undefined) this.used.delete(value);
  }
}
