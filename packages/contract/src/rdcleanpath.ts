import type { RefusalReason } from './gateway-channel.ts';

/**
 * RDP in the browser (ADR 0030): IronRDP's web client opens the gateway's tunnel WebSocket itself
 * and its first message is a binary RDCleanPath request (ASN.1 DER), not the `{"token":…}` frame —
 * the grant token travels in its `proxy_auth` field. A refusal is an RDCleanPath error response,
 * which carries no text: only an HTTP status, a socket error or a TLS alert. The gateway picks a
 * distinct status per refusal so the session page can show the same plain words as the other modes.
 */
export const RDCLEANPATH_REFUSAL_STATUS: Record<RefusalReason, number> = {
  'bad-request': 400,
  'no-token': 401,
  'wrong-client': 403,
  'proxy-protocol': 403,
  'no-grant': 404,
  expired: 408,
  used: 409,
  revoked: 410,
  closed: 410,
  'in-use': 423,
  'fail-closed': 503,
  disabled: 503,
  'claim-timeout': 504,
};

/** The request named a destination other than the grant's workstation. */
export const RDCLEANPATH_WRONG_DESTINATION_STATUS = 422;
/** The workstation answered, but not as an RDP server that can do TLS (xrdp with security_layer=rdp, say). */
export const RDCLEANPATH_NOT_RDP_STATUS = 502;

const WORDS: Record<number, string> = {
  400: 'the gateway did not understand the first message of this connection',
  401: 'no connection grant was presented: open the desktop again from your Stagedoor portal',
  403: 'this connection grant was issued to another address: open the desktop again from your Stagedoor portal on this network',
  404: 'this connection grant is not known here: open the desktop again from your Stagedoor portal',
  408: 'this connection grant expired before it was used: open the desktop again from your Stagedoor portal',
  409: 'this connection grant was used: open the desktop again from your Stagedoor portal',
  410: 'this desktop was released: open it again from your Stagedoor portal',
  422: 'the session asked for another desktop than the one this grant is for',
  423: 'this desktop is open in another session: close it, or open the desktop again from your Stagedoor portal',
  502: 'the desktop did not answer as an RDP server with TLS',
  503: 'the gateway is not accepting new connections right now: try again shortly',
  504: 'the gateway could not confirm this grant with the Stagedoor broker in time: try again shortly',
};

/** Plain words for an RDCleanPath error's fields (what the browser viewer shows). */
export function rdCleanPathErrorWords(e: { httpStatusCode?: number | null; wsaLastError?: number | null; tlsAlertCode?: number | null }): string {
  if (e.httpStatusCode != null) return WORDS[e.httpStatusCode] ?? `the gateway refused the connection (HTTP ${e.httpStatusCode})`;
  if (e.wsaLastError != null) return `the desktop did not accept the connection (socket error ${e.wsaLastError}): try again shortly`;
  if (e.tlsAlertCode != null) return `the TLS handshake with the desktop failed (alert ${e.tlsAlertCode})`;
  return 'the gateway refused the connection';
}
