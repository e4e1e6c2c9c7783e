import type { Protocol } from '../../db/schema/policies.ts';
import type { RoutedPorts } from '../../db/schema/gateways.ts';
import { ConflictError } from '../errors.ts';
import { crlf, hostPort, rdpLines, safeFileName, shellSafe, withPlanLines, type RenderedInstructions } from './connection-files.ts';

/** What a routed grant's instructions are drawn from (ADR 0017): the gateway's public side and the token. */
export interface RoutedTarget {
  protocol: Protocol;
  connectionId: string;
  /** The gateway's public address and its routed listeners' public ports. */
  host: string;
  ports: RoutedPorts;
  sniDomain: string | null;
  sshHostKey: string | null;
  tlsCertificateSha256: string | null;
  /** The workstation as the gateway reaches it (ssh names it; the other modes need not). */
  targetAddress: string;
  targetPort: number;
  token: string;
  username: string | null;
  desktopName: string;
  extraLines?: string[];
  /** The grant admits reconnects (its plan's window is above 0). */
  reconnects: boolean;
}

export interface RoutedInstructions extends RenderedInstructions {
  /** The public port the client dials for this protocol's routed listener. */
  port: number;
  sshConfig: string | null;
  knownHosts: string | null;
  tunnel: { url: string; token: string; certificateSha256: string | null; command: string };
}

/** Which routed listener carries each protocol: the ones whose first packet cannot carry a token go through the tunnel. */
export const ROUTED_LISTENER_OF: Record<Protocol, keyof RoutedPorts> = { rdp: 'rdp', ssh: 'ssh', dcv: 'tls', vnc: 'tunnel', pcoip: 'tunnel' };

/**
 * A routed grant's instructions — pure, table-tested: the `.rdp` routing token, the SSH jump host
 * command with its config snippet and known_hosts line, the `.dcv` SNI host name, and for every
 * protocol the HTTPS tunnel (the only way for vnc and pcoip).
 */
export function renderRouted(t: RoutedTarget): RoutedInstructions {
  const port = t.ports[ROUTED_LISTENER_OF[t.protocol]];
  const base = safeFileName(t.desktopName);
  const tunnelCommand = `stagedoor connect --tunnel ${t.connectionId}`;
  const tunnel = { url: `wss://${hostPort(t.host, t.ports.tunnel)}/tunnel`, token: t.token, certificateSha256: t.tlsCertificateSha256, command: tunnelCommand };
  const none = { sshConfig: null, knownHosts: null };
  switch (t.protocol) {
    case 'rdp':
      return {
        port,
        fileName: `${base}.rdp`,
        file: crlf(withPlanLines(rdpLines({ address: hostPort(t.host, port), token: t.token, username: t.username, autoReconnect: t.reconnects }), t.extraLines, 'rdp')),
        command: null,
        ...none,
        tunnel,
      };
    case 'ssh': {
      // The port is always written (`host:22` too): ProxyJump and -J take [user@]host[:port].
      const jump = `${t.token}@${hostPort(t.host, port)}`;
      const user = t.username ? `${shellSafe(t.username)}@` : '';
      const targetPort = t.targetPort === 22 ? '' : ` -p ${t.targetPort}`;
      const config = [`Host ${base}`, `  HostName ${t.targetAddress}`, `  Port ${t.targetPort}`, ...(t.username ? [`  User ${t.username}`] : []), `  ProxyJump ${jump}`].join('\n') + '\n';
      return {
        port,
        fileName: null,
        file: null,
        command: `ssh -J ${jump}${targetPort} ${user}${t.targetAddress}`,
        sshConfig: config,
        knownHosts: knownHostsLine(t.host, port, t.sshHostKey),
        tunnel,
      };
    }
    case 'dcv': {
      if (!t.sniDomain) throw new ConflictError('the routed dcv mode needs the gateway\'s sniDomain (e.g. gw.example.com, with *.gw.example.com pointing at the gateways): an admin sets it with PATCH /api/v1/gateways/{id}');
      return {
        port,
        fileName: `${base}.dcv`,
        // The host name carries the token as its first label: the TLS listener routes by SNI.
        file: crlf(withPlanLines(['[version]', 'format=1.0', '', '[connect]', `host=${t.token}.${t.sniDomain}`, `port=${port}`, ...(t.username ? [`user=${t.username}`] : []), 'sessionid=console'], t.extraLines, 'dcv')),
        command: null,
        ...none,
        tunnel,
      };
    }
    case 'vnc':
    case 'pcoip':
      return { port, fileName: null, file: null, command: tunnelCommand, ...none, tunnel };
  }
}

/** `host ssh-ed25519 AAAA…` (port 22) or `[host]:port ssh-ed25519 AAAA…`; the key's comment is left out. */
export function knownHostsLine(host: string, port: number, sshHostKey: string | null): string | null {
  const parts = sshHostKey?.trim().split(/\s+/) ?? [];
  if (parts.length < 2) return null;
  return `${port === 22 ? host : `[${host}]:${port}`} ${parts[0]} ${parts[1]}`;
}
