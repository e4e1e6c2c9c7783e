/**
 * What clients of the routed modes dial, and whether those are the admin's public ports (a
 * balancer's) or the gateway's own listeners; a listener the gateway runs on another port than the
 * public one, or not at all, is named, since that is what breaks a client's connection.
 */
export function routedPortsText(g: Record<string, unknown>): string {
  const ports = g.routedPorts as Record<string, number> | undefined;
  if (!ports) return '—';
  const own = (g.listenerPorts ?? null) as Record<string, number | null> | null;
  const parts = (['rdp', 'ssh', 'tls', 'tunnel'] as const).map((k) => {
    const listener = own ? own[k] : undefined;
    const note = own === null ? '' : listener === null ? ' (off here)' : g.routedPortsSet && listener !== ports[k] ? ` (listens on ${String(listener)})` : '';
    return `${k} ${String(ports[k])}${note}`;
  });
  return `${parts.join(' · ')} — ${g.routedPortsSet ? 'public ports set by an admin' : own ? "the gateway's own listeners" : 'defaults (not reported yet)'}`;
}
