/**
 * SSH in the browser (issue 17, ADR 0029; docs/web.md): the wire between the browser's terminal
 * (xterm.js) and the gateway, which runs the SSH client to the granted workstation.
 *
 * It rides the HTTPS tunnel's WebSocket (tunnel.ts): the first message is the token frame with
 * `"mode": "ssh-terminal"`; the gateway answers `{"ok":true}` once the grant is admitted. After that:
 *
 * - **binary frames** are terminal bytes, both ways: keystrokes (UTF-8) from the browser, the
 *   workstation's output to it. While the user signs in, the gateway itself reads the keystrokes to
 *   answer the workstation's prompts (login name, password, keyboard-interactive), echoing only what
 *   the prompt allows: the answers go to the workstation and nowhere else (never logged, never stored).
 * - **text frames** are JSON control messages, one object each, `type` first (below).
 *
 * The session ends with a WebSocket close: 1000 when the shell exited, 4401 when the workstation
 * refused the sign-in (the reason is its last words), 4495 when the user refused the host key, the
 * tunnel's own codes otherwise (4403 grant refused, 4410 closed by the gateway, 4502 unreachable).
 */
export const SSH_TERMINAL_MODE = 'ssh-terminal';

export const SSH_TERMINAL_CLOSE = {
  /** The workstation refused the sign-in (wrong password, no method left). */
  authFailed: 4401,
  /** The user did not accept the workstation's host key. */
  hostKeyRejected: 4495,
  /** The SSH session failed after sign-in (the channel could not open, a protocol error). */
  sshError: 4500,
} as const;

/** Terminal size bounds: a resize outside them is clamped, never an error. */
export const SSH_TERMINAL_MAX_COLS = 1000;
export const SSH_TERMINAL_MAX_ROWS = 500;

/** Browser → gateway control messages. */
export type SshTerminalClientMessage =
  /** The terminal's size in character cells (sent at start and on every window resize). */
  | { type: 'resize'; cols: number; rows: number }
  /** The answer to `host-key`: connect on, or give up. */
  | { type: 'host-key-answer'; accept: boolean };

/** Gateway → browser control messages. */
export type SshTerminalServerMessage =
  /**
   * The workstation's host key, before any answer is sent to it. `known` says what the gateway
   * checked it against: `match` (a registered key matched: informational, no answer needed),
   * `unknown` (no registered key: the browser compares with what it remembered for this desktop and
   * answers with `host-key-answer`).
   */
  | { type: 'host-key'; algorithm: string; fingerprint: string; known: 'match' | 'unknown' }
  /** Signed in and the shell is open: from here every binary frame is the workstation's. */
  | { type: 'shell' }
  /** Why the session is ending, in plain words (also written to the terminal). */
  | { type: 'error'; message: string };

/** Parse a browser control frame; null for anything that is not one of ours. */
export function parseSshTerminalClientMessage(text: string): SshTerminalClientMessage | null {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return null;
  }
  if (!msg || typeof msg !== 'object') return null;
  const m = msg as Record<string, unknown>;
  if (m.type === 'resize' && Number.isFinite(m.cols) && Number.isFinite(m.rows)) {
    return { type: 'resize', cols: clamp(m.cols as number, SSH_TERMINAL_MAX_COLS), rows: clamp(m.rows as number, SSH_TERMINAL_MAX_ROWS) };
  }
  if (m.type === 'host-key-answer' && typeof m.accept === 'boolean') return { type: 'host-key-answer', accept: m.accept };
  return null;
}

function clamp(n: number, max: number): number {
  return Math.min(max, Math.max(1, Math.floor(n)));
}
