import type { Protocol } from '../../db/schema/policies.ts';

export interface ConnectionTarget {
  protocol: Protocol;
  host: string;
  port: number;
  username: string | null;
  desktopName: string;
  /** Extra file lines from the protocol plan's client options. */
  extraLines?: string[];
  /** RDP: whether the client should reconnect by itself (what the grant allows; default yes). */
  autoReconnect?: boolean;
}

export interface RenderedInstructions {
  fileName: string | null;
  file: string | null;
  command: string | null;
}

/**
 * What the user's client needs, per protocol — pure, so each format has table tests. Files use
 * CRLF, as Windows clients expect. Extra lines from the plan are appended after ours; a line that
 * repeats one of our keys overrides it (clients take the last occurrence).
 */
export function renderInstructions(t: ConnectionTarget): RenderedInstructions {
  const base = safeFileName(t.desktopName);
  switch (t.protocol) {
    case 'rdp':
      return {
        fileName: `${base}.rdp`,
        file: crlf([
          `full address:s:${hostPort(t.host, t.port)}`,
          ...(t.username ? [`username:s:${t.username}`] : []),
          'prompt for credentials:i:1',
          'administrative session:i:0',
          'screen mode id:i:2',
          'use multimon:i:0',
          'audiomode:i:0',
          'redirectclipboard:i:1',
          `autoreconnection enabled:i:${t.autoReconnect === false ? 0 : 1}`,
          'authentication level:i:2',
          'negotiate security layer:i:1',
          ...(t.extraLines ?? []),
        ]),
        command: null,
      };
    case 'dcv':
      return {
        fileName: `${base}.dcv`,
        file: crlf(['[version]', 'format=1.0', '', '[connect]', `host=${t.host}`, `port=${t.port}`, ...(t.username ? [`user=${t.username}`] : []), 'sessionid=console', ...(t.extraLines ?? [])]),
        command: null,
      };
    case 'vnc':
      return { fileName: `${base}.vnc`, file: crlf(['[Connection]', `Host=${hostPort(t.host, t.port)}`, ...(t.extraLines ?? [])]), command: null };
    case 'ssh':
      return { fileName: null, file: null, command: `ssh -p ${t.port} ${t.username ? `${shellSafe(t.username)}@` : ''}${t.host}` };
    case 'pcoip':
      return { fileName: null, file: null, command: hostPort(t.host, t.port) };
  }
}

export const FILE_TYPES: Record<'rdp' | 'dcv' | 'vnc', string> = {
  rdp: 'application/x-rdp',
  dcv: 'application/x-dcv',
  vnc: 'application/x-vnc',
};

export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function crlf(lines: string[]): string {
  return lines.map((l) => l.replace(/[\r\n]/g, '')).join('\r\n') + '\r\n';
}

export function safeFileName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'desktop';
}

/** Usernames are validated at creation, but a command line is no place to trust that. */
export function shellSafe(s: string): string {
  return /^[A-Za-z0-9._@-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}
