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
 * CRLF, as Windows clients expect. A plan line replaces our line of the same key (`withPlanLines`).
 */
export function renderInstructions(t: ConnectionTarget): RenderedInstructions {
  const base = safeFileName(t.desktopName);
  switch (t.protocol) {
    case 'rdp':
      return {
        fileName: `${base}.rdp`,
        file: crlf(withPlanLines(rdpLines({ address: hostPort(t.host, t.port), username: t.username, autoReconnect: t.autoReconnect !== false }), t.extraLines, 'rdp')),
        command: null,
      };
    case 'dcv':
      return {
        fileName: `${base}.dcv`,
        file: crlf(withPlanLines(['[version]', 'format=1.0', '', '[connect]', `host=${t.host}`, `port=${t.port}`, ...(t.username ? [`user=${t.username}`] : []), 'sessionid=console'], t.extraLines, 'dcv')),
        command: null,
      };
    case 'vnc':
      return { fileName: `${base}.vnc`, file: crlf(withPlanLines(['[Connection]', `Host=${hostPort(t.host, t.port)}`], t.extraLines, 'vnc')), command: null };
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

/** The VNC viewers whose file formats we write; the `.vnc` of the instructions is RealVNC's. */
export const VNC_FORMATS = ['realvnc', 'tigervnc'] as const;
export type VncFormat = (typeof VNC_FORMATS)[number];

/**
 * TigerVNC's own format (also read by TurboVNC's viewer, which comes from it): TigerVNC refuses the
 * RealVNC `[Connection]` file as "in an invalid format". The first line must be exactly this
 * identifier; `host::port` names a TCP port (a single colon below 100 would be a display number).
 * LF line ends, as TigerVNC writes them on every platform. The plan's `fileLines` are RealVNC keys
 * and are not carried over (docs/connect-flow.md, "VNC files").
 */
export function tigervncFile(host: string, port: number): string {
  const server = host.includes(':') ? `[${host}]::${port}` : `${host}::${port}`;
  return ['TigerVNC Configuration file Version 1.0', '', `ServerName=${server.replace(/[\r\n]/g, '')}`, ''].join('\n');
}

/**
 * The `.rdp` file's own lines, port forward and routed alike. Routed adds the grant token as
 * `loadbalanceinfo`: mstsc and FreeRDP send it as the routing token of their first packet, and the
 * gateway strips it. `autoReconnect` says what the grant allows (no window: a reconnect is refused).
 */
export function rdpLines(o: { address: string; token?: string; username: string | null; autoReconnect: boolean }): string[] {
  return [
    `full address:s:${o.address}`,
    ...(o.token ? [`loadbalanceinfo:s:${o.token}`] : []),
    ...(o.username ? [`username:s:${o.username}`] : []),
    'prompt for credentials:i:1',
    'administrative session:i:0',
    'screen mode id:i:2',
    'use multimon:i:0',
    'audiomode:i:0',
    'redirectclipboard:i:1',
    `autoreconnection enabled:i:${o.autoReconnect ? 1 : 0}`,
    'authentication level:i:2',
    'negotiate security layer:i:1',
  ];
}

/** Where each file format's key ends (`use multimon:i:1`, `sessionid=console`). */
const KEY_END = { rdp: ':', dcv: '=', vnc: '=' } as const;
/**
 * Keys a plan line may not replace: where the client connects (and, routed, the grant token). A plan
 * that could rewrite them would send clients around the gateway or break every grant.
 */
const LOCKED_KEYS = { rdp: ['full address', 'loadbalanceinfo'], dcv: ['host', 'port'], vnc: ['host'] } as const;

/**
 * The file's lines with the plan's lines merged in: a plan line replaces our line of the same key
 * (compared without case, as the clients do), in its place; other plan lines follow ours. A plan line
 * for a locked key is left out. Without this, `.rdp` files carried `use multimon:i:0` and then
 * `use multimon:i:1`, and which one a client honours is the client's choice.
 */
export function withPlanLines(defaults: string[], planLines: string[] | undefined, format: keyof typeof KEY_END): string[] {
  if (!planLines?.length) return defaults;
  const keyOf = (line: string): string | null => {
    const end = line.indexOf(KEY_END[format]);
    return end > 0 ? line.slice(0, end).trim().toLowerCase() : null;
  };
  const locked = new Set<string>(LOCKED_KEYS[format]);
  const byKey = new Map<string, string>();
  const rest: string[] = [];
  for (const line of planLines) {
    const key = keyOf(line);
    if (key && locked.has(key)) continue;
    if (key) byKey.set(key, line); // the last plan line of a key wins
    else rest.push(line);
  }
  const used = new Set<string>();
  const merged = defaults.map((line) => {
    const key = keyOf(line);
    if (key && byKey.has(key)) {
      used.add(key);
      return byKey.get(key)!;
    }
    return line;
  });
  const added = [...byKey].filter(([key]) => !used.has(key)).map(([, line]) => line);
  return [...merged, ...added, ...rest];
}

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
