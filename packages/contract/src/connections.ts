import { z } from 'zod';
import { Timestamp, Uuid } from './common.ts';
import { PowerState, Protocol } from './providers.ts';
import { TUNNEL_MODES } from './tunnel.ts';

export const DesktopState = z.enum(['available', 'starting', 'running', 'in-use', 'stopped', 'unavailable']);

/** One offer on "My desktops": a pool the user's policy offers, with the machines they hold in it. */
export const Desktop = z.object({
  poolId: Uuid,
  name: z.string(),
  description: z.string().nullable(),
  state: DesktopState,
  /** Why it is unavailable, for people. */
  reason: z.string().nullable(),
  desktops: z.number().int().describe('how many desktops of this pool the policy allows the user'),
  protocols: z.array(Protocol),
  machines: z.array(
    z.object({ workstationId: Uuid, name: z.string(), powerState: PowerState, connectionId: Uuid.nullable(), state: DesktopState, persistent: z.boolean() }),
  ),
});
export const Desktops = z.object({
  policy: z.object({ id: Uuid, name: z.string(), allowRestart: z.boolean().optional().describe('the user may restart their machine (POST /api/v1/connections/{id}/restart)') }).nullable(),
  reason: z.string().nullable().describe('set when no policy matches'),
  desktops: z.array(Desktop),
});

export const ConnectRequest = z.strictObject({
  poolId: Uuid,
  workstationId: Uuid.optional().describe('reconnect to this machine of yours'),
  additional: z.boolean().default(false).describe('take another desktop of this pool (up to what the policy allows) instead of your current one'),
  protocol: Protocol.optional().describe('default: the first of the protocol plan'),
});

/** Headers of `POST /connections`: an optional idempotency key (other headers pass). */
export const ConnectHeaders = z.looseObject({
  'idempotency-key': z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/, 'must be 1–255 visible ASCII characters (e.g. a UUID)')
    .optional()
    .describe('the same key on a retry returns the same connection'),
});

export const ConnectionState = z.enum(['starting', 'ready', 'connected', 'closed', 'failed']);

/**
 * A routed grant's HTTPS tunnel (ADR 0017): `stagedoor connect --tunnel <connection id>` opens it and
 * a local port for any native client. The token goes in the first WebSocket message, never in the URL.
 */
export const TunnelInstructions = z.object({
  url: z.string().describe('wss://<gateway>:<tunnel port>/tunnel'),
  token: z.string().describe('the grant token (the same as in the other routed modes)'),
  certificateSha256: z.string().nullable().describe("the gateway's TLS certificate fingerprint to pin (null: not reported yet)"),
  command: z.string().describe('e.g. stagedoor connect --tunnel <connection id>'),
});

export const ConnectionInstructions = z.object({
  protocol: Protocol,
  host: z.string(),
  port: z.number().int(),
  viaGateway: z.boolean(),
  gatewayMode: z.enum(['portForward', 'routed']).nullable().describe('null: direct'),
  /** Routed mode, for the connection's owner only, while the grant lives: the secret the client presents. */
  token: z.string().nullable(),
  /** Routed ssh: an ~/.ssh/config snippet using the gateway as the jump host. */
  sshConfig: z.string().nullable(),
  /** Routed ssh: the gateway's host key as a known_hosts line (null: not reported yet). */
  knownHosts: z.string().nullable(),
  /** Routed mode: the HTTPS tunnel, which works for every protocol (the only way for vnc and pcoip). */
  tunnel: TunnelInstructions.nullable(),
  /** The plan offers this desktop in a browser tab (`browser: true`), for its owner while the grant lives; null otherwise. */
  browser: z.object({ viewOnly: z.boolean() }).nullable(),
  /** Connect by this time (gateway grants are single-use and short-lived); null for direct. */
  connectBy: Timestamp.nullable(),
  fileName: z.string().nullable(),
  /** The .rdp / .dcv / .vnc file; null for ssh and pcoip. */
  file: z.string().nullable(),
  /** e.g. the ssh command line, or "host:port" for the PCoIP client. */
  command: z.string().nullable(),
});

/** What the client can say about its grant: whether it can still be used, and until when. */
export const ConnectionGrant = z.object({
  id: Uuid,
  mode: z.enum(['portForward', 'routed']),
  state: z.enum(['unused', 'in-use', 'ended', 'expired', 'revoked']).describe('ended: its session is over (routed: a reconnect is possible until reconnectUntil)'),
  /** The first connection must come before this. */
  connectBy: Timestamp,
  singleUse: z.boolean().describe('true: one session; false: the same client may reconnect within the plan\'s window after a session ends'),
  /** Routed, between sessions: the same client may connect again until then. */
  reconnectUntil: Timestamp.nullable(),
});

export const Connection = z.object({
  id: Uuid,
  state: ConnectionState,
  grant: ConnectionGrant.nullable().describe('the newest gateway grant of the connection (null: direct, or none yet)'),
  poolId: Uuid.nullable(),
  workstation: z.object({ id: Uuid, name: z.string(), powerState: PowerState }),
  protocol: Protocol,
  progress: z.object({ stage: z.enum(['assigned', 'launching', 'booting', 'starting', 'ready', 'failed', 'closed']), percent: z.number().int().min(0).max(100), message: z.string() }),
  instructions: ConnectionInstructions.nullable(),
  requestedAt: Timestamp,
  readyAt: Timestamp.nullable(),
  closedAt: Timestamp.nullable(),
  endReason: z.string().nullable(),
});

/**
 * What the browser session page needs to open the gateway's tunnel (ADR 0028): the token travels in
 * this body and in the WebSocket's first message, never in a URL.
 */
export const BrowserSession = z.object({
  connectionId: Uuid,
  protocol: Protocol,
  desktopName: z.string(),
  url: z.string().describe('wss://<gateway>:<tunnel port>/tunnel'),
  token: z.string().describe('the grant token: send {"token": …, "mode": …} as the first WebSocket message'),
  mode: z.enum(TUNNEL_MODES).describe('the tunnel mode for this protocol: tcp (vnc), ssh-terminal (ssh), rdcleanpath (rdp)'),
  viewOnly: z.boolean(),
  connectBy: Timestamp.nullable().describe('the grant must be used before this (null: it was used; a reconnect may still be possible)'),
  singleUse: z.boolean(),
});

export const ConnectionFileQuery = z.strictObject({
  protocol: Protocol.optional(),
  format: z.enum(['realvnc', 'tigervnc']).optional().describe('VNC only: realvnc (.vnc, the default) or tigervnc (.tigervnc, for TigerVNC and TurboVNC)'),
});
