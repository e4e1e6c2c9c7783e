import type { Protocol } from '../../db/schema/policies.ts';
import { ConflictError } from '../errors.ts';
import type { ConnectionView } from './connection-status.ts';

export type BrowserMode = 'tcp' | 'ssh-terminal' | 'rdcleanpath';

/** What the tunnel carries for each protocol a browser tab shows (ADR 0028). */
export const BROWSER_MODE_OF: Partial<Record<Protocol, BrowserMode>> = { vnc: 'tcp', ssh: 'ssh-terminal', rdp: 'rdcleanpath' };

export interface BrowserSessionView {
  connectionId: string;
  protocol: Protocol;
  desktopName: string;
  url: string;
  token: string;
  mode: BrowserMode;
  viewOnly: boolean;
  connectBy: Date | null;
  singleUse: boolean;
}

/**
 * What the browser session page needs (pure): the gateway's tunnel URL, the grant's token and the
 * desktop's name, drawn from the owner's view of a ready connection — the same grant, bound to the
 * same client address, as the native instructions. A connection that cannot be opened in a browser
 * is a 409 with what to do in plain words.
 */
export function browserSessionOf(view: ConnectionView): BrowserSessionView {
  const i = view.instructions;
  const name = view.workstation?.name ?? 'this desktop';
  if (!i) throw new ConflictError(view.progress.stage === 'closed' || view.progress.stage === 'failed' ? `this connection is over (${view.progress.message}): connect again from your Stagedoor portal` : `${name} is not ready yet (${view.progress.message})`);
  const mode = BROWSER_MODE_OF[i.protocol];
  if (i.gatewayMode !== 'routed' || !mode) throw new ConflictError(`${name} is not offered in a browser: its protocol plan needs browser: true (${i.protocol} through a routed gateway)`);
  if (!i.tunnel || !i.token) {
    const state = view.grant?.state;
    throw new ConflictError(
      state === 'expired'
        ? 'this connection grant expired: connect again from your Stagedoor portal'
        : state === 'revoked'
          ? 'this desktop was released: connect again from your Stagedoor portal'
          : 'this connection grant was used: connect again from your Stagedoor portal',
    );
  }
  if (!i.browser) throw new ConflictError(`${name} is not offered in a browser: its protocol plan needs browser: true for ${i.protocol}`);
  return {
    connectionId: view.connection.id,
    protocol: i.protocol,
    desktopName: name,
    url: i.tunnel.url,
    token: i.token,
    mode,
    viewOnly: i.browser.viewOnly,
    connectBy: i.connectBy,
    singleUse: view.grant?.singleUse ?? true,
  };
}
