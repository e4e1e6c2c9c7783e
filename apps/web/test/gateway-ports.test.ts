import { describe, expect, it } from 'vitest';
import { routedPortsText } from '../src/pages/gateway-ports.ts';

const PUBLIC = { rdp: 3389, ssh: 22, tls: 8443, tunnel: 443 };

describe('the Gateways table: routed ports', () => {
  it('names where the ports come from, and a listener that is off or elsewhere than the public port', () => {
    expect(routedPortsText({ routedPorts: PUBLIC, routedPortsSet: false, listenerPorts: null })).toBe('rdp 3389 · ssh 22 · tls 8443 · tunnel 443 — defaults (not reported yet)');
    expect(routedPortsText({ routedPorts: { ...PUBLIC, ssh: 2222 }, routedPortsSet: false, listenerPorts: { rdp: 3389, ssh: 2222, tls: null, tunnel: 443 } })).toBe(
      "rdp 3389 · ssh 2222 · tls 8443 (off here) · tunnel 443 — the gateway's own listeners",
    );
    expect(routedPortsText({ routedPorts: PUBLIC, routedPortsSet: true, listenerPorts: { rdp: 3389, ssh: 2222, tls: 8443, tunnel: 8444 } })).toBe(
      'rdp 3389 · ssh 22 (listens on 2222) · tls 8443 · tunnel 443 (listens on 8444) — public ports set by an admin',
    );
    expect(routedPortsText({})).toBe('—');
  });
});
