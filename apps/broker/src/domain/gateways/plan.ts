import { randomInt } from 'node:crypto';

/**
 * Pure decisions of the gateway domain: which gateway takes a connection, which port a grant gets,
 * what a gateway's grant table should become. No I/O; table tests in apps/broker/test/gateways.
 */

export interface GatewayCandidate {
  id: string;
  status: string;
  health: string;
  lastSeenAt: Date | null;
  liveGrants: number;
  load: { sessions?: number };
}

/**
 * Healthy (heard from within `staleMs`), active (not enrolled-only, disabled or draining), least
 * loaded: fewest live grants + reported sessions. Ties are broken at random (`random` in [0, 1)),
 * so that a storm of concurrent connects, which all see the same counts, spreads over the cluster.
 */
export function chooseGateway<T extends GatewayCandidate>(candidates: T[], now: Date, staleMs: number, random: () => number = Math.random): T | null {
  const fresh = now.getTime() - staleMs;
  const ok = candidates.filter((g) => g.status === 'active' && g.health === 'healthy' && g.lastSeenAt !== null && g.lastSeenAt.getTime() >= fresh);
  if (ok.length === 0) return null;
  const least = Math.min(...ok.map(loadOf));
  const tied = ok.filter((g) => loadOf(g) === least).sort((a, b) => a.id.localeCompare(b.id));
  return tied[Math.min(tied.length - 1, Math.floor(random() * tied.length))]!;
}

function loadOf(g: GatewayCandidate): number {
  // Live grants count sessions the broker knows of at once; the heartbeat adds what it alone sees.
  return Math.max(g.liveGrants, g.load.sessions ?? 0);
}

/**
 * A free port of [start, end], not in `used`, drawn uniformly from the operating system's CSPRNG
 * (`randomInt(n)` returns [0, n)). Unpredictable on purpose: in port-forward mode a grant admits its
 * client's address, so a colleague behind the same office NAT (the same address) who could guess the
 * next port could take the session; `Math.random` is a generator whose state can be recovered from
 * its outputs. Random also means concurrent issuers rarely collide and a just-freed port (still
 * lingering on the gateway) is rarely reused at once. Null when every port is taken.
 */
export function pickPort(start: number, end: number, used: ReadonlySet<number>, random: (n: number) => number = randomInt): number | null {
  const size = end - start + 1;
  if (size <= 0) return null;
  for (let i = 0; i < 16; i++) {
    const p = start + random(size);
    if (!used.has(p)) return p;
  }
  // Nearly full: draw among the free ports themselves, still uniformly.
  const free: number[] = [];
  for (let p = start; p <= end; p++) if (!used.has(p)) free.push(p);
  return free.length ? free[random(free.length)]! : null;
}

export interface LiveGrantView {
  id: string;
  state: string;
  sessionGatewayId: string | null;
  /** `routed` grants go to every gateway of the cluster while they live; absent = port forward. */
  mode?: string;
}

/**
 * The grants a gateway should hold: every unused live grant of its cluster (any gateway of the
 * cluster may take the connection), and the used ones whose session it carries. Used port-forward
 * grants carried elsewhere are not sent: their one session exists already. Routed grants stay on
 * every gateway while they live: the broker decides each session by a claim (ADR 0017), so a
 * gateway holding one can answer a second session or a reconnect with the broker's reason.
 */
export function grantsForGateway<T extends LiveGrantView>(live: T[], gatewayId: string): T[] {
  return live.filter((g) => g.state === 'issued' || g.mode === 'routed' || (g.state === 'used' && g.sessionGatewayId === gatewayId));
}

/** What to send a gateway so that the grants it holds become `desired`. */
export function diffGrants(held: ReadonlySet<string>, desired: readonly { id: string }[]): { add: string[]; remove: string[] } {
  const want = new Set(desired.map((g) => g.id));
  return { add: [...want].filter((id) => !held.has(id)), remove: [...held].filter((id) => !want.has(id)) };
}

export type SessionStartDecision =
  | { action: 'start' }
  | { action: 'already'; }
  | { action: 'refuse'; reason: string };

/** The routed fields `decideSessionStart` reads (absent on a port-forward grant). */
export interface RoutedSessionFacts {
  mode?: string;
  claimedGatewayId?: string | null;
  sessionEndedAt?: Date | null;
  /** Sessions started so far (accepted claims). */
  sessions?: number;
}

/**
 * A gateway says a grant's session began: take it, note a repeat, or tell it to close the session.
 * Port forward: the first report takes an issued grant. Routed: the claim already took it (ADR
 * 0017), so only the gateway whose claim was accepted may start its session, once per claim.
 */
export function decideSessionStart(grant: { state: string } & RoutedSessionFacts, sessionGatewayId: string | null, reporter: string, connectionState?: string, reportedSession?: number): SessionStartDecision {
  if (grant.mode === 'routed') {
    // The start of an earlier session, sent again after a lost acknowledgement: that session is over.
    if (reportedSession !== undefined && grant.sessions !== undefined && reportedSession < grant.sessions) return { action: 'already' };
    if (grant.state === 'issued') return { action: 'refuse', reason: 'not-claimed' };
    if (grant.state !== 'used') return { action: 'refuse', reason: grant.state };
    if (grant.claimedGatewayId !== reporter) return { action: 'refuse', reason: 'used-elsewhere' };
    // Its session ended already (a repeat of the start), or this start was applied (connected here).
    if (grant.sessionEndedAt) return { action: 'already' };
    if (connectionState === 'connected' && sessionGatewayId === reporter) return { action: 'already' };
    return { action: 'start' };
  }
  if (grant.state === 'issued') return { action: 'start' };
  if (grant.state === 'used') return sessionGatewayId === reporter ? { action: 'already' } : { action: 'refuse', reason: 'used-elsewhere' };
  return { action: 'refuse', reason: grant.state };
}
