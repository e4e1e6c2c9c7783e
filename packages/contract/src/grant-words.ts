/**
 * What a grant allows, in words an artist reads (issue 14 point 8): the portal and `stagedoor
 * connect` say the same thing. `time` formats an instant for the reader's clock.
 */
export interface GrantFacts {
  mode: 'portForward' | 'routed';
  state: 'unused' | 'in-use' | 'ended' | 'expired' | 'revoked';
  connectBy: string;
  singleUse: boolean;
  reconnectUntil: string | null;
}

export function describeGrant(g: GrantFacts, time: (iso: string) => string): string {
  const again = 'connect again for a fresh one';
  switch (g.state) {
    case 'unused':
      return g.singleUse
        ? `Single use: the first session must start before ${time(g.connectBy)}; once it ends, ${again}.`
        : `Connect before ${time(g.connectBy)}; after a session ends, this computer may reconnect with the same file or command for a while.`;
    case 'in-use':
      return g.singleUse ? 'In use: this grant admits one session, and it is running.' : 'In use: one session at a time; a dropped session may reconnect from this computer.';
    case 'ended':
      return g.reconnectUntil ? `The session ended; this computer may reconnect until ${time(g.reconnectUntil)}, then ${again}.` : `The session ended: ${again}.`;
    case 'expired':
      return `Not used before ${time(g.connectBy)}, so it expired: ${again}.`;
    case 'revoked':
      return `Closed (the desktop was released or access changed): ${again}.`;
  }
}
