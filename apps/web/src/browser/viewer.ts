import type { BrowserSession } from '../api/types.ts';

/** A keyboard shortcut the toolbar offers (keys a browser or the local OS would take for itself). */
export interface Shortcut {
  label: string;
  send: () => void;
}

/** What the toolbar can do with a running viewer; each viewer offers what its protocol supports. */
export interface ViewerControls {
  /** End the session from this side. */
  disconnect: () => void;
  /** Give the keyboard to the desktop (after a toolbar click). */
  focus?: () => void;
  shortcuts?: Shortcut[];
  /** Send text to the desktop's clipboard. */
  paste?: (text: string) => void;
  /** Scale the desktop to the window (true) or show it at its own size. */
  setScaled?: (scaled: boolean) => void;
}

/** How a session ended, in words for the user. */
export interface SessionEnd {
  title: string;
  detail: string;
  /** The grant may admit another session from here (a reconnect): offer to open it again. */
  canRetry?: boolean;
}

/**
 * One protocol's viewer in the session tab's slot (ADR 0028): vnc-view.tsx (noVNC),
 * terminal-view.tsx (xterm.js, ssh-terminal mode), rdp-view.tsx (IronRDP, rdcleanpath mode).
 *
 * The viewer opens the gateway tunnel with `open` (the shell sends the token as the first message and
 * turns the WebSocket's close into the message the page shows), says when the desktop is showing
 * with `onReady`, and reports failures of its own (a wrong VNC password…) with `onFailed`.
 */
export interface ViewerProps {
  session: BrowserSession;
  /** Opens the tunnel; `options` go in the first message beside the token and the mode. */
  open: (options?: Record<string, unknown>) => WebSocket;
  onReady: (controls: ViewerControls) => void;
  /** Text the desktop put on its clipboard. */
  onClipboard: (text: string) => void;
  onFailed: (end: SessionEnd) => void;
}
