import type { ModeHandler } from './modes.ts';

/**
 * `rdcleanpath`: IronRDP's RDCleanPath handshake, then the RDP stream (issue 17 point 3). Not built
 * yet: without a handler the tunnel refuses the mode before admission, so the grant is not used up.
 */
export const rdcleanpath: ModeHandler | undefined = undefined;
