import type { Role } from '@stagedoor/contract';

/**
 * Who is acting, passed from the HTTP edge (or the CLI) into services so that permission checks
 * and audit rows need nothing from the request itself.
 */
export interface Actor {
  userId: string | null;
  username: string;
  role: Role;
  sourceAddress: string | null;
  requestId: string | null;
  via: 'session' | 'token' | 'cli' | 'system' | 'anonymous';
}

/** The actor for changes made by the `stagedoor` command on the server itself. */
export function cliActor(command: string): Actor {
  return { userId: null, username: `cli:${command}`, role: 'admin', sourceAddress: null, requestId: null, via: 'cli' };
}

export const systemActor: Actor = { userId: null, username: 'system', role: 'admin', sourceAddress: null, requestId: null, via: 'system' };
