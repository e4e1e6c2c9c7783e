import type { ModeHandlers } from './modes.ts';
import { rdcleanpath } from './rdcleanpath.ts';
import { sshTerminal } from './ssh-terminal.ts';

export type { EarlyFrame, ModeHandler, ModeHandlers, ModeSession, TunnelOutcome } from './modes.ts';
export { closeMessageFor } from './modes.ts';

/** The browser modes this gateway offers on its HTTPS tunnel (ADR 0028); `tcp` is the tunnel's own relay. */
export const BROWSER_MODES: ModeHandlers = {
  ...(sshTerminal ? { 'ssh-terminal': sshTerminal } : {}),
  ...(rdcleanpath ? { rdcleanpath } : {}),
};
