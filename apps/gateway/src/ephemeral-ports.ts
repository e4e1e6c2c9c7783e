import fs from 'node:fs';

/**
 * The kernel picks the local port of every outgoing connection from its ephemeral range
 * (`net.ipv4.ip_local_port_range`, 32768-60999 on Linux by default). A grant port inside it fails to
 * open (EADDRINUSE) whenever some outgoing connection of this host holds that number, at random.
 */
export function readEphemeralPortRange(file = '/proc/sys/net/ipv4/ip_local_port_range'): [number, number] | null {
  try {
    const [low, high] = fs.readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
    return Number.isInteger(low) && Number.isInteger(high) ? [low!, high!] : null;
  } catch {
    return null; // not Linux, or no /proc: nothing to compare against
  }
}

/** The warning for a grant port range that overlaps the ephemeral range, or null when it does not. */
export function ephemeralOverlapNotice(variable: string, start: number, end: number, ephemeral: [number, number] | null): string | null {
  if (!ephemeral || end < ephemeral[0] || start > ephemeral[1]) return null;
  const from = Math.max(start, ephemeral[0]);
  const to = Math.min(end, ephemeral[1]);
  return (
    `${variable} (${start}-${end}) overlaps the kernel's ephemeral port range (${ephemeral[0]}-${ephemeral[1]}) on ${from}-${to}: ` +
    'a grant on one of those ports cannot open while an outgoing connection of this host holds it, and its user is refused. ' +
    'Choose a range outside it (the default 20000-20999 is), or narrow net.ipv4.ip_local_port_range'
  );
}
