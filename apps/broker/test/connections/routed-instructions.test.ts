import { describe, expect, it } from 'vitest';
import { GRANT_TOKEN_PATTERN } from '@stagedoor/contract';
import { grantStatus } from '../../src/domain/connections/grant-status.ts';
import { knownHostsLine, renderRouted } from '../../src/domain/connections/routed-instructions.ts';
import type { GrantRow } from '../../src/domain/connections/connections.repository.ts';
import { claimRefusal } from '../../src/domain/gateways/claims.ts';
import { grantTokenHash, newGrantToken } from '../../src/domain/gateways/grant-tokens.ts';
import { decideSessionStart, grantsForGateway } from '../../src/domain/gateways/plan.ts';
import { ConflictError } from '../../src/domain/errors.ts';

const TOKEN = 'abcdefghijklmnopqrstuvwxyz234567';
const base = {
  connectionId: '11111111-1111-4111-8111-111111111111',
  host: 'gw.example.com',
  ports: { rdp: 3389, ssh: 22, tls: 8443, tunnel: 443 },
  sniDomain: 'gw.example.com',
  sshHostKey: 'ssh-ed25519 AAAAKEY comment',
  tlsCertificateSha256: 'AB:CD',
  targetAddress: '10.0.0.5',
  targetPort: 22,
  token: TOKEN,
  username: 'ana',
  desktopName: 'edit-001',
  reconnects: true,
};

describe('routed instructions (pure)', () => {
  it('grant tokens: 32 characters of lowercase base32, 160 random bits, hashed lowercase', () => {
    expect(newGrantToken(() => Buffer.alloc(20, 0))).toBe('a'.repeat(32));
    expect(newGrantToken(() => Buffer.alloc(20, 0xff))).toBe('7'.repeat(32));
    // RFC 4648 test vector "foobar" → MZXW6YTBOI, padded to 20 bytes with zeros.
    expect(newGrantToken(() => Buffer.concat([Buffer.from('foobar'), Buffer.alloc(14)])).startsWith('mzxw6ytboi')).toBe(true);
    const tokens = new Set(Array.from({ length: 100 }, () => newGrantToken()));
    expect(tokens.size).toBe(100);
    for (const t of tokens) expect(t).toMatch(GRANT_TOKEN_PATTERN);
    expect(grantTokenHash(TOKEN.toUpperCase())).toBe(grantTokenHash(TOKEN));
  });

  it('rdp: full address on the routed port, the routing token, autoreconnect as the grant allows', () => {
    const r = renderRouted({ ...base, protocol: 'rdp' });
    const lines = r.file!.split('\r\n');
    expect(lines.slice(0, 3)).toEqual(['full address:s:gw.example.com:3389', `loadbalanceinfo:s:${TOKEN}`, 'username:s:ana']);
    expect(lines).toContain('autoreconnection enabled:i:1');
    expect(renderRouted({ ...base, protocol: 'rdp', reconnects: false }).file).toContain('autoreconnection enabled:i:0');
    expect(r.tunnel).toEqual({ url: 'wss://gw.example.com:443/tunnel', token: TOKEN, certificateSha256: 'AB:CD', command: `stagedoor connect --tunnel ${base.connectionId}` });
  });

  it('ssh: the jump command (explicit ports), a config snippet and known_hosts', () => {
    const r = renderRouted({ ...base, protocol: 'ssh' });
    expect(r.command).toBe(`ssh -J ${TOKEN}@gw.example.com:22 ana@10.0.0.5`);
    expect(r.sshConfig).toBe(`Host edit-001\n  HostName 10.0.0.5\n  Port 22\n  User ana\n  ProxyJump ${TOKEN}@gw.example.com:22\n`);
    expect(r.knownHosts).toBe('gw.example.com ssh-ed25519 AAAAKEY');
    const other = renderRouted({ ...base, protocol: 'ssh', ports: { ...base.ports, ssh: 2222 }, targetPort: 2200, host: 'fd00::1' });
    expect(other.command).toBe(`ssh -J ${TOKEN}@[fd00::1]:2222 -p 2200 ana@10.0.0.5`);
    expect(other.knownHosts).toBe('[fd00::1]:2222 ssh-ed25519 AAAAKEY');
    expect(knownHostsLine('gw', 22, null)).toBeNull();
  });

  it('dcv: the SNI host name <token>.<domain> on the TLS port; a clear conflict without a domain', () => {
    const lines = renderRouted({ ...base, protocol: 'dcv' }).file!.split('\r\n');
    expect(lines).toContain(`host=${TOKEN}.gw.example.com`);
    expect(lines).toContain('port=8443');
    expect(() => renderRouted({ ...base, protocol: 'dcv', sniDomain: null })).toThrow(ConflictError);
  });

  it('vnc and pcoip: the tunnel only', () => {
    for (const protocol of ['vnc', 'pcoip'] as const) {
      expect(renderRouted({ ...base, protocol })).toMatchObject({ file: null, port: 443, command: `stagedoor connect --tunnel ${base.connectionId}` });
    }
  });
});

describe('grant states and claim decisions (pure)', () => {
  const now = new Date('2026-03-02T09:00:00Z');
  const at = (s: number) => new Date(now.getTime() + s * 1000);
  const grant = (over: Partial<GrantRow>): GrantRow =>
    ({ id: 'g', mode: 'routed', state: 'issued', validUntil: at(60), sessionEndedAt: null, reconnectWindowSeconds: 600, gatewayCluster: 'c', clientAddress: '203.0.113.7', claimedGatewayId: null, ...over }) as GrantRow;

  it.each([
    [{ state: 'issued' }, 'unused', null],
    [{ state: 'issued', validUntil: at(-1) }, 'expired', null],
    [{ state: 'used' }, 'in-use', null],
    [{ state: 'used', sessionEndedAt: at(-10) }, 'ended', at(590)],
    [{ state: 'used', sessionEndedAt: at(-700) }, 'expired', null],
    [{ state: 'closed' }, 'ended', null],
    [{ state: 'revoked' }, 'revoked', null],
    [{ state: 'expired' }, 'expired', null],
  ] as const)('%o is %s', (over, state, reconnectUntil) => {
    expect(grantStatus(grant(over as Partial<GrantRow>), now)).toMatchObject({ state, reconnectUntil, singleUse: false });
  });

  it('refusal reasons, a stranger learning nothing of the state', () => {
    const claim = { cluster: 'c', clientAddress: '203.0.113.7' };
    const r = (over: Partial<GrantRow>, connectionLive = true) => claimRefusal({ grant: grant(over), connectionLive }, claim, now);
    expect(claimRefusal(undefined, claim, now)).toBe('no-grant');
    expect(r({ mode: 'portForward' })).toBe('no-grant');
    expect(r({ gatewayCluster: 'other' })).toBe('no-grant');
    expect(r({ state: 'revoked', clientAddress: '198.51.100.1' })).toBe('wrong-client');
    expect(r({ state: 'revoked' })).toBe('revoked');
    expect(r({ state: 'issued' }, false)).toBe('revoked');
    expect(r({ validUntil: at(-1) })).toBe('expired');
    expect(r({ state: 'used' })).toBe('in-use');
    expect(r({ state: 'used', sessionEndedAt: at(-700) })).toBe('used');
    expect(r({ state: 'closed' })).toBe('used');
  });

  it('a routed session starts only on the claimant, once per claim; routed grants go to every gateway', () => {
    const g = { state: 'used', mode: 'routed', claimedGatewayId: 'A', sessionEndedAt: null };
    expect(decideSessionStart(g, null, 'A', 'ready')).toEqual({ action: 'start' });
    expect(decideSessionStart(g, 'A', 'A', 'connected')).toEqual({ action: 'already' });
    expect(decideSessionStart(g, null, 'B', 'ready')).toEqual({ action: 'refuse', reason: 'used-elsewhere' });
    expect(decideSessionStart({ ...g, sessionEndedAt: now }, 'A', 'A', 'ready')).toEqual({ action: 'already' });
    expect(decideSessionStart({ ...g, state: 'issued' }, null, 'A')).toEqual({ action: 'refuse', reason: 'not-claimed' });
    const live = [
      { id: 'pf', state: 'used', sessionGatewayId: 'A' },
      { id: 'routed', state: 'used', sessionGatewayId: 'A', mode: 'routed' },
    ];
    expect(grantsForGateway(live, 'B').map((x) => x.id)).toEqual(['routed']);
  });
});
