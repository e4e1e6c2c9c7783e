import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { RefusalReason } from '@stagedoor/contract';
import { createLog } from '../../src/log.ts';
import { createAdmitter, type Claim } from '../../src/routed/admitter.ts';
import { GONE_MEMORY_MAX, GONE_MEMORY_MS, RoutedGrants, tokenHash, type RoutedGrant } from '../../src/routed/routed-grants.ts';

const TOKEN = 'abcdefghijklmnopqrstuvwxyz234567';
const OTHER = '234567abcdefghijklmnopqrstuvwxyz';
const NOW = Date.parse('2030-01-01T10:00:00Z');

function grant(token: string, over: Partial<RoutedGrant> = {}): RoutedGrant {
  return { id: randomUUID(), mode: 'routed', port: null, tokenHash: tokenHash(token), clientAddress: '198.51.100.7', targetAddress: '10.1.2.3', targetPort: 3389, validUntil: new Date(NOW + 60_000).toISOString(), sessionUntil: null, inUse: false, ...over };
}

function setup(opts: { claim?: Claim; refusing?: RefusalReason | null; now?: () => number } = {}) {
  const grants = new RoutedGrants(opts.now ?? (() => NOW));
  const reports: unknown[] = [];
  const claims: string[] = [];
  const admit = createAdmitter({
    grants,
    claim: opts.claim ?? (async (id) => (claims.push(id), { ok: true, reason: null })),
    refusing: () => opts.refusing ?? null,
    reporter: {
      sessionStarted: (id, client, _at, session) => reports.push(session ? ['started', id, client, session] : ['started', id, client]),
      sessionEnded: (id, o, _at, session) => reports.push(session ? ['ended', id, o.reason, o.bytesUp, o.bytesDown, session] : ['ended', id, o.reason, o.bytesUp, o.bytesDown]),
      refused: (port, client, reason, id) => reports.push(['refused', port, client, reason, id]),
    },
    portOf: (l) => (l === 'rdp' ? 3389 : 8443),
    now: opts.now ?? (() => NOW),
    log: createLog('error', {}, () => undefined),
  });
  return { grants, admit, reports, claims };
}

describe('routed grants: lookup by token hash', () => {
  it('finds a grant by its token in any case, and nothing for another token', () => {
    const t = new RoutedGrants();
    const g = grant(TOKEN);
    t.add(g);
    expect(t.find(TOKEN)?.grant.id).toBe(g.id);
    expect(t.find(TOKEN.toUpperCase())?.grant.id).toBe(g.id);
    expect(t.find(OTHER)).toBeNull();
    expect(t.size).toBe(1);
  });

  it('the welcome replaces the set; a grant no longer live is revoked', () => {
    const t = new RoutedGrants();
    const a = grant(TOKEN);
    t.add(a);
    const b = grant(OTHER);
    t.replace([b]);
    expect(t.find(TOKEN)).toBeNull();
    expect(t.find(OTHER)?.grant.id).toBe(b.id);
  });
});

describe('the routed admitter', () => {
  it('checks in order: token, grant, client address, connect-by, the gateway, then the broker', async () => {
    let now = NOW;
    const { grants, admit, reports, claims } = setup({ now: () => now });
    const g = grant(TOKEN);
    grants.add(g);
    expect(await admit('rdp', '', '198.51.100.7')).toMatchObject({ ok: false, reason: 'no-token' });
    expect(await admit('rdp', 'Cookie: mstshash=artist', '198.51.100.7')).toMatchObject({ ok: false, reason: 'no-token' });
    expect(await admit('rdp', OTHER, '198.51.100.7')).toMatchObject({ ok: false, reason: 'no-grant' });
    expect(await admit('tls', TOKEN, '198.51.100.8')).toMatchObject({ ok: false, reason: 'wrong-client' });
    now = NOW + 61_000;
    expect(await admit('rdp', TOKEN, '::ffff:198.51.100.7')).toMatchObject({ ok: false, reason: 'expired', message: /expired/ });
    expect(claims).toEqual([]); // none of these reached the broker
    now = NOW;
    const a = await admit('rdp', TOKEN.toUpperCase(), '::ffff:198.51.100.7');
    expect(a).toMatchObject({ ok: true, grantId: g.id, target: { host: '10.1.2.3', port: 3389 } });
    expect(claims).toEqual([g.id]);
    expect(reports).toEqual([
      ['refused', 3389, '198.51.100.7', 'no-token', null],
      ['refused', 3389, '198.51.100.7', 'no-token', null],
      ['refused', 3389, '198.51.100.7', 'no-grant', null],
      ['refused', 8443, '198.51.100.8', 'wrong-client', g.id],
      ['refused', 3389, '198.51.100.7', 'expired', g.id],
      ['started', g.id, '198.51.100.7'],
    ]);
    // Past connect-by, a grant used here is the broker's to allow again (a reconnect), not expired.
    now = NOW + 61_000;
    expect(await admit('rdp', TOKEN, '198.51.100.7')).toMatchObject({ ok: true });
  });

  it('fail closed and disabled refuse before any claim; a broker refusal is reported with its reason', async () => {
    const closed = setup({ refusing: 'fail-closed' });
    closed.grants.add(grant(TOKEN));
    expect(await closed.admit('rdp', TOKEN, '198.51.100.7')).toMatchObject({ ok: false, reason: 'fail-closed' });
    expect(closed.claims).toEqual([]);
    const used = setup({ claim: async () => ({ ok: false, reason: 'used' }) });
    const g = grant(TOKEN);
    used.grants.add(g);
    expect(await used.admit('rdp', TOKEN, '198.51.100.7')).toMatchObject({ ok: false, reason: 'used', message: /was used/ });
    expect(used.reports).toEqual([['refused', 3389, '198.51.100.7', 'used', g.id]]);
  });

  it('a revoke closes live sessions through onClose; ended reports once with the bytes; the snapshot counts them', async () => {
    const { grants, admit, reports } = setup();
    const g = grant(TOKEN);
    grants.add(g);
    const a = await admit('tls', TOKEN, '198.51.100.7');
    if (!a.ok) throw new Error(a.reason);
    const closed: string[] = [];
    a.onClose((reason) => closed.push(reason));
    a.countBytes(() => ({ bytesUp: 10, bytesDown: 20 }));
    expect(grants.sessions()).toMatchObject([{ grantId: g.id, bytesUp: 10, bytesDown: 20, clientAddress: '198.51.100.7' }]);
    expect(grants.totalBytes()).toEqual({ up: 10, down: 20 });
    grants.revoke(g.id, 'revoked: released');
    expect(closed).toEqual(['revoked: released']);
    a.ended({ reason: 'revoked: released', bytesUp: 11, bytesDown: 21 });
    a.ended({ reason: 'again', bytesUp: 1, bytesDown: 1 });
    expect(reports.filter((r) => (r as string[])[0] === 'ended')).toEqual([['ended', g.id, 'revoked: released', 11, 21]]);
    expect(grants.sessions()).toEqual([]);
    expect(grants.totalBytes()).toEqual({ up: 11, down: 21 });
    expect(await admit('tls', TOKEN, '198.51.100.7')).toMatchObject({ ok: false, reason: 'revoked', message: /released/ });
  });

  it('a client arriving after its grant was revoked is told why, not "not known", for an hour', async () => {
    let now = NOW;
    const { grants, admit, reports, claims } = setup({ now: () => now });
    const expiredUnused = grant(TOKEN);
    const usedElsewhere = grant(OTHER);
    const released = grant('mnopqrstuvwxyz234567abcdefghijkl');
    for (const g of [expiredUnused, usedElsewhere, released]) grants.add(g);
    now = NOW + 61_000;
    // The broker's pass revokes an unused grant past its connect-by as `closed`: no longer live there.
    grants.revoke(expiredUnused.id, 'closed');
    grants.revoke(usedElsewhere.id, 'used-elsewhere');
    grants.revoke(released.id, 'revoked: released by the artist');
    expect(await admit('tls', TOKEN, '198.51.100.7')).toMatchObject({ ok: false, reason: 'expired', message: /expired before it was used/ });
    expect(await admit('rdp', OTHER, '198.51.100.7')).toMatchObject({ ok: false, reason: 'used' });
    expect(await admit('rdp', 'mnopqrstuvwxyz234567abcdefghijkl', '198.51.100.7')).toMatchObject({ ok: false, reason: 'revoked' });
    // From another address the answer is the address, as for a live grant.
    expect(await admit('rdp', TOKEN, '198.51.100.9')).toMatchObject({ ok: false, reason: 'wrong-client' });
    expect(reports).toEqual([
      ['refused', 8443, '198.51.100.7', 'expired', expiredUnused.id],
      ['refused', 3389, '198.51.100.7', 'used', usedElsewhere.id],
      ['refused', 3389, '198.51.100.7', 'revoked', released.id],
      ['refused', 3389, '198.51.100.9', 'wrong-client', expiredUnused.id],
    ]);
    expect(claims).toEqual([]);
    now = NOW + 61_000 + GONE_MEMORY_MS;
    expect(await admit('tls', TOKEN, '198.51.100.7')).toMatchObject({ ok: false, reason: 'no-grant' });
  });

  it('the memory of revoked grants is bounded: the oldest are forgotten first', () => {
    const t = new RoutedGrants(() => NOW);
    const tokens: string[] = [];
    for (let i = 0; i <= GONE_MEMORY_MAX; i++) {
      const token = `${i.toString(16).padStart(8, '0')}${'b'.repeat(24)}`;
      tokens.push(token);
      const g = grant(token);
      t.add(g);
      t.revoke(g.id, 'revoked: released');
    }
    expect(t.gone(tokens[0]!)).toBeNull();
    expect(t.gone(tokens[1]!)?.reason).toBe('revoked');
    expect(t.gone(tokens.at(-1)!)?.reason).toBe('revoked');
  });

  it('a revoke that crosses the broker\'s answer wins; a close asked for before onClose happens at registration', async () => {
    let answer!: (a: { ok: boolean; reason: null }) => void;
    const { grants, admit } = setup({ claim: () => new Promise((r) => (answer = r)) });
    const g = grant(TOKEN);
    grants.add(g);
    const pending = admit('rdp', TOKEN, '198.51.100.7');
    await new Promise((r) => setImmediate(r));
    grants.revoke(g.id, 'released');
    answer({ ok: true, reason: null });
    expect(await pending).toMatchObject({ ok: false, reason: 'revoked' });

    grants.add(g);
    const b = await (async () => {
      const p = admit('rdp', TOKEN, '198.51.100.7');
      await new Promise((r) => setImmediate(r));
      answer({ ok: true, reason: null });
      return p;
    })();
    if (!b.ok) throw new Error(b.reason);
    grants.revoke(g.id, 'released');
    const closed: string[] = [];
    b.onClose((reason) => closed.push(reason));
    expect(closed).toEqual(['revoked: released']);
  });

  it('each session carries the number the broker gave its claim: reports and heartbeat figures name it', async () => {
    let next = 0;
    const { grants, admit, reports } = setup({ claim: async () => ({ ok: true, reason: null, session: ++next }) });
    const g = grant(TOKEN);
    grants.add(g);
    const first = await admit('rdp', TOKEN, '198.51.100.7');
    if (!first.ok) throw new Error(first.reason);
    first.countBytes(() => ({ bytesUp: 1, bytesDown: 2 }));
    expect(grants.sessions()).toMatchObject([{ grantId: g.id, session: 1 }]);
    first.ended({ reason: 'client-closed', bytesUp: 1, bytesDown: 2 });
    const second = await admit('rdp', TOKEN, '198.51.100.7');
    if (!second.ok) throw new Error(second.reason);
    second.countBytes(() => ({ bytesUp: 3, bytesDown: 4 }));
    expect(grants.sessions()).toMatchObject([{ grantId: g.id, bytesUp: 3, bytesDown: 4, session: 2 }]);
    second.ended({ reason: 'client-closed', bytesUp: 3, bytesDown: 4 });
    expect(reports).toEqual([
      ['started', g.id, '198.51.100.7', 1],
      ['ended', g.id, 'client-closed', 1, 2, 1],
      ['started', g.id, '198.51.100.7', 2],
      ['ended', g.id, 'client-closed', 3, 4, 2],
    ]);
    expect(grants.totalBytes()).toEqual({ up: 4, down: 6 });
  });
});
