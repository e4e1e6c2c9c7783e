import { TUNNEL_MODES, TUNNEL_NATIVE_MAX_LINE, type TunnelMode } from '@stagedoor/contract';

/**
 * The tunnel's first message, the same in both wires (packages/contract/src/tunnel.ts): the
 * WebSocket's first text frame, and the native mode's token line (ADR 0032). It is tiny (a token, a
 * mode, a terminal size); anything longer is not a client of ours.
 */
export interface FirstMessage {
  token: string;
  mode: TunnelMode;
  options: Record<string, unknown>;
}

/** `{"token":"…","mode":"…",…}`, or null for anything else (no token, an unknown mode, too long). */
export function readFirstMessage(data: Buffer): FirstMessage | null {
  if (data.length > TUNNEL_NATIVE_MAX_LINE) return null;
  try {
    const msg: unknown = JSON.parse(data.toString('utf8'));
    if (!msg || typeof msg !== 'object' || Array.isArray(msg)) return null;
    const { token, mode = 'tcp', ...options } = msg as Record<string, unknown>;
    if (typeof token !== 'string' || token.length === 0 || token.length > 256) return null;
    if (!(TUNNEL_MODES as readonly unknown[]).includes(mode)) return null;
    return { token, mode: mode as TunnelMode, options };
  } catch {
    return null;
  }
}
