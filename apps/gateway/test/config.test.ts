import { describe, expect, it } from 'vitest';
import { GatewayConfigError, loadGatewayConfig } from '../src/config.ts';

const BASE = { STAGEDOOR_BROKER_URLS: 'http://127.0.0.1:8080' };

describe('gateway configuration', () => {
  it('defaults to the native relay when built, one thread, one relay process', () => {
    const c = loadGatewayConfig(BASE);
    expect(c).toMatchObject({ relay: { engine: 'auto', threads: 1, halfCloseSeconds: 60 }, workers: 1, failClosedMs: 60_000, portRangeStart: 20000, portRangeEnd: 20999 });
    expect(loadGatewayConfig({ ...BASE, STAGEDOOR_GATEWAY_RELAY: 'js', STAGEDOOR_GATEWAY_RELAY_THREADS: '2', STAGEDOOR_GATEWAY_HALF_CLOSE_SECONDS: '0' }).relay).toEqual({ engine: 'js', threads: 2, halfCloseSeconds: 0 });
  });

  it('names every bad variable at once, and what it expects', () => {
    let err: unknown;
    try {
      loadGatewayConfig({ ...BASE, STAGEDOOR_GATEWAY_RELAY: 'splice', STAGEDOOR_GATEWAY_RELAY_THREADS: '0', STAGEDOOR_GATEWAY_PORTS: '9-1', STAGEDOOR_GATEWAY_HALF_CLOSE_SECONDS: '1.5' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GatewayConfigError);
    const problems = (err as GatewayConfigError).problems.map((p) => p.variable).sort();
    expect(problems).toEqual(['STAGEDOOR_GATEWAY_HALF_CLOSE_SECONDS', 'STAGEDOOR_GATEWAY_PORTS', 'STAGEDOOR_GATEWAY_RELAY', 'STAGEDOOR_GATEWAY_RELAY_THREADS']);
    expect((err as Error).message).toContain('must be auto, native or js');
  });

  it('PROXY protocol on without a source list refuses to start (any peer could name any client in a header)', () => {
    expect(() => loadGatewayConfig({ ...BASE, STAGEDOOR_GATEWAY_PROXY_PROTOCOL: 'on' })).toThrow(/STAGEDOOR_GATEWAY_PROXY_SOURCES: is required with STAGEDOOR_GATEWAY_PROXY_PROTOCOL=on/);
    const c = loadGatewayConfig({ ...BASE, STAGEDOOR_GATEWAY_PROXY_PROTOCOL: 'on', STAGEDOOR_GATEWAY_PROXY_SOURCES: '10.0.0.0/24, 192.0.2.9' });
    expect(c.proxyProtocol.enabled).toBe(true);
    expect([c.proxyProtocol.sources.has('10.0.0.77'), c.proxyProtocol.sources.has('10.0.1.1')]).toEqual([true, false]);
    expect(() => loadGatewayConfig({ ...BASE, STAGEDOOR_GATEWAY_PROXY_PROTOCOL: 'on', STAGEDOOR_GATEWAY_PROXY_SOURCES: 'balancer.example' })).toThrow(/not an address/);
  });

  it('a plain-http broker URL beyond loopback is refused (the gateway credential and every grant would cross the network in clear text)', () => {
    expect(() => loadGatewayConfig({ STAGEDOOR_BROKER_URLS: 'https://broker-a.example,http://broker-b.example:8080' })).toThrow(/http:\/\/broker-b\.example:8080 is plain http:\/\/ to another host/);
    expect(() => loadGatewayConfig({ STAGEDOOR_BROKER_URLS: 'http://10.0.0.5:8080' })).toThrow(GatewayConfigError);
    for (const ok of ['https://broker.example', 'http://127.0.0.1:8080', 'http://127.9.0.1:8080', 'http://localhost:8080', 'http://[::1]:8080']) {
      expect(loadGatewayConfig({ STAGEDOOR_BROKER_URLS: ok }).brokerUrls).toEqual([ok]);
    }
    expect(loadGatewayConfig({ STAGEDOOR_BROKER_URLS: 'http://10.0.0.5:8080', STAGEDOOR_GATEWAY_ALLOW_INSECURE_BROKER: 'true' }).brokerUrls).toEqual(['http://10.0.0.5:8080']);
    expect(() => loadGatewayConfig({ STAGEDOOR_BROKER_URLS: 'http://10.0.0.5:8080', STAGEDOOR_GATEWAY_ALLOW_INSECURE_BROKER: 'yes' })).toThrow(/must be true or false/);
  });

  it('routed listeners: default ports, each can be off; bad ports, a shared port and half a certificate are named', () => {
    expect(loadGatewayConfig(BASE).routed).toEqual({ rdpPort: 3389, sshPort: 22, tlsPort: 8443, httpsPort: 443, tlsCertFile: null, tlsKeyFile: null, claimTimeoutMs: 5000 });
    const off = loadGatewayConfig({ ...BASE, STAGEDOOR_GATEWAY_RDP_PORT: 'off', STAGEDOOR_GATEWAY_SSH_PORT: '2222', STAGEDOOR_GATEWAY_CLAIM_TIMEOUT_SECONDS: '1.5' });
    expect(off.routed).toMatchObject({ rdpPort: null, sshPort: 2222, claimTimeoutMs: 1500 });
    let err: unknown;
    try {
      loadGatewayConfig({ ...BASE, STAGEDOOR_GATEWAY_RDP_PORT: '70000', STAGEDOOR_GATEWAY_TLS_PORT: '443', STAGEDOOR_GATEWAY_TLS_CERT: '/etc/gw.pem' });
    } catch (e) {
      err = e;
    }
    expect((err as GatewayConfigError).problems.map((p) => p.variable).sort()).toEqual(['STAGEDOOR_GATEWAY_HTTPS_PORT', 'STAGEDOOR_GATEWAY_RDP_PORT', 'STAGEDOOR_GATEWAY_TLS_KEY']);
    expect(() => loadGatewayConfig({ ...BASE, STAGEDOOR_GATEWAY_TLS_PORT: '20443' })).toThrow(/STAGEDOOR_GATEWAY_TLS_PORT: 20443 lies in STAGEDOOR_GATEWAY_PORTS/);
  });
});
