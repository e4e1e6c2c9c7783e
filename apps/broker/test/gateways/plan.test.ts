import { describe, expect, it, vi } from 'vitest';
import { chooseGateway, decideSessionStart, diffGrants, grantsForGateway, pickPort, type GatewayCandidate } from '../../src/domain/gateways/plan.ts';

const NOW = new Date('2026-03-01T10:00:00Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000);
const gw = (id: string, over: Partial<GatewayCandidate> = {}): GatewayCandidate => ({ id, status: 'active', health: 'healthy', lastSeenAt: ago(1), liveGrants: 0, load: {}, ...over });

describe('chooseGateway: healthy, active, least loaded', () => {
  it.each([
    { name: 'none at all', gws: [], want: null },
    { name: 'the only healthy one', gws: [gw('a')], want: 'a' },
    { name: 'least live grants', gws: [gw('a', { liveGrants: 5 }), gw('b', { liveGrants: 2 })], want: 'b' },
    { name: 'reported sessions count when above live grants', gws: [gw('a', { liveGrants: 1, load: { sessions: 9 } }), gw('b', { liveGrants: 3 })], want: 'b' },
    { name: 'disabled is skipped', gws: [gw('a', { status: 'disabled' }), gw('b', { liveGrants: 50 })], want: 'b' },
    { name: 'draining is skipped', gws: [gw('a', { status: 'draining' })], want: null },
    { name: 'never connected (enrolled) is skipped', gws: [gw('a', { status: 'enrolled' })], want: null },
    { name: 'unhealthy is skipped', gws: [gw('a', { health: 'unhealthy' })], want: null },
    { name: 'stale (not seen within staleMs) is skipped though marked healthy', gws: [gw('a', { lastSeenAt: ago(31) }), gw('b', { lastSeenAt: ago(29), liveGrants: 7 })], want: 'b' },
  ])('$name', ({ gws, want }) => {
    expect(chooseGateway(gws, NOW, 30_000)?.id ?? null).toBe(want);
  });
  it('breaks ties at random, so that concurrent connects spread', () => {
    const tied = [gw('a', { liveGrants: 1 }), gw('b', { liveGrants: 1 }), gw('c', { liveGrants: 4 })];
    expect(chooseGateway(tied, NOW, 30_000, () => 0)?.id).toBe('a');
    expect(chooseGateway(tied, NOW, 30_000, () => 0.99)?.id).toBe('b');
  });
});

describe('pickPort', () => {
  it('never returns a used port and returns null when the range is full', () => {
    const used = new Set([100, 101, 103]);
    for (let i = 0; i < 200; i++) expect([102, 104]).toContain(pickPort(100, 104, used));
    expect(pickPort(100, 102, new Set([100, 101, 102]))).toBeNull();
    expect(pickPort(7, 7, new Set())).toBe(7);
  });
  it('spreads picks over the range (random), so concurrent issuers rarely collide', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(pickPort(20000, 20999, new Set())!);
    expect(seen.size).toBeGreaterThan(150);
  });
  it('finds the last free port of a nearly full range', () => {
    const used = new Set(Array.from({ length: 999 }, (_, i) => 20000 + i).filter((p) => p !== 20500));
    expect(pickPort(20000, 20998, used, (n) => Math.floor(0.1 * n))).toBe(20500);
    expect(pickPort(20000, 20998, new Set([...used, 20500]))).toBeNull();
  });
  it('a grant port cannot be guessed from Math.random: ports come from the CSPRNG (a colleague behind the same NAT could take the next grant)', () => {
    // Whoever learns Math.random's state (it can be recovered from its outputs) knows what it returns next.
    const predictable = vi.spyOn(Math, 'random').mockReturnValue(0);
    try {
      const picks = Array.from({ length: 50 }, () => pickPort(20000, 20999, new Set())!);
      expect(new Set(picks).size).toBeGreaterThan(40);
      // Issued one after another, each taking the last one's port out: not the next in line either.
      const used = new Set<number>();
      const sequence = Array.from({ length: 50 }, () => {
        const p = pickPort(20000, 20999, used)!;
        used.add(p);
        return p;
      });
      const steps = sequence.slice(1).filter((p, i) => p === sequence[i]! + 1).length;
      expect(steps).toBeLessThan(5);
      expect(predictable).not.toHaveBeenCalled();
    } finally {
      predictable.mockRestore();
    }
  });
});

describe('grantsForGateway and diffGrants', () => {
  const live = [
    { id: 'issued', state: 'issued', sessionGatewayId: 'a' },
    { id: 'used-here', state: 'used', sessionGatewayId: 'b' },
    { id: 'used-elsewhere', state: 'used', sessionGatewayId: 'c' },
  ];
  it('sends unused grants to every gateway of the cluster and used ones only to the gateway carrying them', () => {
    expect(grantsForGateway(live, 'b').map((g) => g.id)).toEqual(['issued', 'used-here']);
    expect(grantsForGateway(live, 'x').map((g) => g.id)).toEqual(['issued']);
  });
  it('computes what to add and what to revoke', () => {
    expect(diffGrants(new Set(['issued', 'gone']), [{ id: 'issued' }, { id: 'new' }])).toEqual({ add: ['new'], remove: ['gone'] });
  });
});

describe('decideSessionStart', () => {
  it.each([
    { state: 'issued', carrier: null, want: { action: 'start' } },
    { state: 'used', carrier: 'me', want: { action: 'already' } },
    { state: 'used', carrier: 'other', want: { action: 'refuse', reason: 'used-elsewhere' } },
    { state: 'revoked', carrier: null, want: { action: 'refuse', reason: 'revoked' } },
    { state: 'expired', carrier: null, want: { action: 'refuse', reason: 'expired' } },
  ])('$state carried by $carrier → $want.action', ({ state, carrier, want }) => {
    expect(decideSessionStart({ state }, carrier, 'me')).toEqual(want);
  });
});
