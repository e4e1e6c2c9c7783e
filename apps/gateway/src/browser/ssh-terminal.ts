import type { ModeHandler } from './modes.ts';

/**
 * `ssh-terminal`: the gateway is the SSH client for the grant and the browser shows a terminal
 * (issue 17 point 2). Not built yet: without a handler the tunnel refuses the mode before admission,
 * so the grant is not used up.
 */
export const sshTerminal: ModeHandler | undefined = undefined;
