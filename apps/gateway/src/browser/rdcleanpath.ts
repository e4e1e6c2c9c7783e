import net from 'node:net';
import tls from 'node:tls';
import {
  closeReason,
  RDCLEANPATH_NOT_RDP_STATUS,
  RDCLEANPATH_REFUSAL_STATUS,
  RDCLEANPATH_WRONG_DESTINATION_STATUS,
  TUNNEL_CLOSE,
  type RefusalReason,
} from '@stagedoor/contract';
import type { WebSocket } from 'ws';
import { normaliseAddress } from '../addresses.ts';
import type { Log } from '../log.ts';
import { REFUSAL_MESSAGES } from '../routed/admission.ts';
import { parseRdpConnectionRequest } from '../routed/rdp-routing.ts';
import { closeMessageFor, type EarlyFrame, type ModeHandler } from './modes.ts';
import { DerError, decodeRdCleanPath, encodeRdCleanPath, rdCleanPathLength, RDCLEANPATH_GENERAL_ERROR, RDCLEANPATH_NEGOTIATION_ERROR, RDCLEANPATH_VERSION, type RdCleanPathError } from './rdcleanpath-der.ts';
import { relayStream } from './stream-relay.ts';
import { readConnectionConfirm } from './x224-confirm.ts';

/**
 * The RDCleanPath handshake (ADR 0030) for IronRDP's browser client, on the gateway's tunnel
 * WebSocket. The client sends one DER PDU: the grant token (`proxy_auth`), the destination it
 * believes it is reaching and its X.224 Connection Request. The gateway admits the token like any
 * routed connection, connects to the grant's workstation — only ever that one: a request naming
 * another destination is refused — sends the X.224 request, reads the Connection Confirm, does the
 * TLS handshake with the workstation (xrdp's certificate is self-signed: not verified against a CA,
 * but its chain is logged and handed to the client, which checks it for CredSSP) and answers with
 * the confirm, the chain and the server's address. From then on the WebSocket carries the RDP
 * stream inside that TLS connection: the browser's bytes are written to it and its plaintext goes
 * back, over the client's own TLS connection to the gateway (wss). Refusals and failures are
 * RDCleanPath error responses, then a close with the tunnel's 4xxx code and plain words.
 */
/** A request is a few hundred bytes (a token, an address, a short X.224 request). */
const MAX_REQUEST = 16 * 1024;
const DEFAULT_RDP_PORT = 3389;
/** MS-RDPBCGR 2.2.1.2.1: the protocols a server may select; 0 is Standard RDP Security, no TLS. */
const PROTOCOL_RDP = 0;
/** The request PDU, the workstation's confirm and its TLS handshake each have this long. */
const STEP_TIMEOUT_MS = 10_000;

/** What the handler gets in `options` once the request was read and checked. */
export interface RdCleanPathRequest {
  destination: string;
  /** The client's X.224 Connection Request, as the workstation is to get it. */
  x224: Buffer;
}

/** Whether the first frame of a tunnel WebSocket is an RDCleanPath request (a DER SEQUENCE). */
export function isRdCleanPathFrame(data: Buffer, isBinary: boolean): boolean {
  return isBinary && data.length > 0 && data[0] === 0x30;
}

function sendError(ws: WebSocket, error: RdCleanPathError): void {
  if (ws.readyState === ws.OPEN) ws.send(encodeRdCleanPath({ version: RDCLEANPATH_VERSION, error }), { binary: true });
}

/** The admission refused the grant: the RDCleanPath error the client reads before the tunnel's close. */
export function refuseRdCleanPath(ws: WebSocket, reason: RefusalReason): void {
  sendError(ws, { errorCode: RDCLEANPATH_GENERAL_ERROR, httpStatusCode: RDCLEANPATH_REFUSAL_STATUS[reason] });
}

/**
 * Before the admission: read the whole request (usually the first frame alone), check it and hand
 * the token and the request on. A malformed request is answered here (400, or 401 without a token)
 * and never reaches the admission, so it uses up no grant. Frames after the request are kept for
 * the handler (`takeEarly`, which also stops this listener).
 */
export function readRdCleanPathRequest(
  ws: WebSocket,
  first: Buffer,
  opts: { log: Log; highWaterMark: number; stepTimeoutMs?: number },
  onRequest: (token: string, request: RdCleanPathRequest, takeEarly: () => EarlyFrame[]) => void,
): void {
  const log = opts.log.child({ mode: 'rdcleanpath' });
  let got = first;
  let done = false;
  const early: EarlyFrame[] = [];
  let earlyBytes = 0;
  const refuse = (status: number, why: string) => {
    log.info({ why, status }, 'tunnel refused: a bad RDCleanPath request');
    sendError(ws, { errorCode: RDCLEANPATH_GENERAL_ERROR, httpStatusCode: status });
    ws.close(status === 401 ? TUNNEL_CLOSE.refused : TUNNEL_CLOSE.badRequest, closeReason(REFUSAL_MESSAGES[status === 401 ? 'no-token' : 'bad-request']));
  };
  const timer = setTimeout(() => refuse(400, 'no complete RDCleanPath request in time'), opts.stepTimeoutMs ?? STEP_TIMEOUT_MS);
  const onMessage = (data: Buffer, isBinary: boolean) => {
    if (done) {
      // A client that does not wait for the response: kept in order for the handler.
      earlyBytes += data.length;
      if (earlyBytes > opts.highWaterMark) ws.close(TUNNEL_CLOSE.badRequest, closeReason(REFUSAL_MESSAGES['bad-request']));
      else early.push({ data, isBinary });
      return;
    }
    if (!isBinary) return void (clearTimeout(timer), refuse(400, 'a text frame in the RDCleanPath request'));
    got = Buffer.concat([got, data]);
    take();
  };
  const take = () => {
    let length: number | null;
    try {
      length = rdCleanPathLength(got);
    } catch (err) {
      clearTimeout(timer);
      return refuse(400, (err as Error).message);
    }
    if ((length ?? got.length) > MAX_REQUEST) {
      clearTimeout(timer);
      return refuse(400, 'request too large');
    }
    if (length === null || got.length < length) return;
    clearTimeout(timer);
    done = true;
    if (got.length > length) early.push({ data: got.subarray(length), isBinary: true });
    const checked = check(got.subarray(0, length));
    if ('status' in checked) return refuse(checked.status, checked.why);
    onRequest(checked.token, checked.request, () => {
      ws.removeListener('message', onMessage);
      return early.splice(0);
    });
  };
  ws.on('message', onMessage);
  ws.once('close', () => clearTimeout(timer));
  take();
}

function check(bytes: Buffer): { token: string; request: RdCleanPathRequest } | { status: number; why: string } {
  let pdu;
  try {
    pdu = decodeRdCleanPath(bytes);
  } catch (err) {
    return { status: 400, why: err instanceof DerError ? err.message : 'undecodable request' };
  }
  if (pdu.version !== RDCLEANPATH_VERSION) return { status: 400, why: `version ${pdu.version}` };
  if (pdu.error || pdu.serverCertChain || pdu.serverAddr) return { status: 400, why: 'a response where a request was expected' };
  // Preconnection blobs (Hyper-V VM connect) are for Hyper-V hosts, which Stagedoor does not route.
  if (pdu.destination === undefined || pdu.x224ConnectionPdu === undefined || pdu.preconnectionBlob !== undefined) {
    return { status: 400, why: 'not an ordinary RDCleanPath request (destination and X.224 request, no preconnection blob)' };
  }
  const x224 = parseRdpConnectionRequest(pdu.x224ConnectionPdu);
  if (x224.kind !== 'ok') return { status: 400, why: `X.224 request: ${x224.kind === 'invalid' ? x224.reason : 'incomplete'}` };
  if (pdu.x224ConnectionPdu.readUInt16BE(2) !== pdu.x224ConnectionPdu.length) return { status: 400, why: 'X.224 request: trailing bytes' };
  if (!pdu.proxyAuth) return { status: RDCLEANPATH_REFUSAL_STATUS['no-token'], why: 'no proxy_auth' };
  return { token: pdu.proxyAuth, request: { destination: pdu.destination, x224: x224.forward } };
}

/** After the admission: the workstation, the handshake, then the relay. */
export const rdcleanpath: ModeHandler = (session) => {
  const { ws, admitted, log } = session;
  const request = session.options.request as RdCleanPathRequest;
  const early = session.takeEarly();
  const fail = (error: RdCleanPathError, code: number, words: string, why: string) => {
    log.info({ why, ...error }, 'rdcleanpath: the session could not start');
    sendError(ws, error);
    if (ws.readyState === ws.OPEN) ws.close(code, closeReason(words));
  };
  if (!destinationIs(request.destination, admitted.target)) {
    session.ended({ reason: `client-error: destination ${request.destination.slice(0, 100)} is not the grant's`, bytesUp: 0, bytesDown: 0 });
    return fail({ errorCode: RDCLEANPATH_GENERAL_ERROR, httpStatusCode: RDCLEANPATH_WRONG_DESTINATION_STATUS }, TUNNEL_CLOSE.refused, 'this session asked for another desktop than the one its grant is for', `destination ${request.destination}`);
  }
  const { host, port } = admitted.target;
  const handshake = { bytesUp: request.x224.length, bytesDown: 0 };
  const end = (reason: string) => session.ended({ reason, ...handshake });
  // A revoke (the desktop released) or the client leaving while the handshake runs ends it as it
  // would end the relay; the relay registers its own once it starts.
  let stream: net.Socket | tls.TLSSocket | null = null;
  let relaying = false;
  admitted.onClose((why) => {
    if (relaying) return;
    stream?.destroy();
    end(`revoked: ${why}`);
    if (ws.readyState === ws.OPEN) ws.close(TUNNEL_CLOSE.closed, closeReason(closeMessageFor(why)));
  });
  ws.once('close', () => {
    if (relaying) return;
    stream?.destroy();
    end('client-closed');
  });
  const step = <T>(what: string, ms: number, p: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(Object.assign(new Error(`${what}: timed out`), { code: 'ETIMEDOUT' })), ms);
      p.then((v) => (clearTimeout(t), resolve(v)), (e: unknown) => (clearTimeout(t), reject(e as Error)));
    });
  const gone = () => ws.readyState !== ws.OPEN;

  void (async () => {
    const tcp = net.connect({ host, port });
    stream = tcp;
    tcp.setNoDelay(true);
    try {
      await step('connect', session.connectTimeoutMs, new Promise<void>((resolve, reject) => tcp.once('connect', resolve).once('error', reject)));
    } catch (err) {
      tcp.destroy();
      end(`target-unreachable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return fail({ errorCode: RDCLEANPATH_GENERAL_ERROR, wsaLastError: wsaError(err as NodeJS.ErrnoException) }, TUNNEL_CLOSE.targetUnreachable, 'the desktop did not accept the connection: try again shortly', 'connect');
    }
    if (gone()) return;
    tcp.write(request.x224);
    let confirm;
    try {
      confirm = await step('X.224 confirm', STEP_TIMEOUT_MS, readConnectionConfirm(tcp));
    } catch (err) {
      tcp.destroy();
      end(`target-error: X.224 confirm: ${(err as Error).message}`);
      return fail({ errorCode: RDCLEANPATH_GENERAL_ERROR, httpStatusCode: RDCLEANPATH_NOT_RDP_STATUS }, TUNNEL_CLOSE.targetUnreachable, 'the desktop did not answer as an RDP server', `X.224 confirm: ${(err as Error).message}`);
    }
    handshake.bytesDown = confirm.pdu.length;
    if (confirm.failureCode !== null) {
      tcp.destroy();
      end(`target-error: RDP negotiation failure ${confirm.failureCode}`);
      log.info({ failureCode: confirm.failureCode }, 'rdcleanpath: the workstation refused the RDP negotiation');
      if (gone()) return;
      ws.send(encodeRdCleanPath({ version: RDCLEANPATH_VERSION, error: { errorCode: RDCLEANPATH_NEGOTIATION_ERROR }, x224ConnectionPdu: confirm.pdu }), { binary: true });
      return ws.close(TUNNEL_CLOSE.targetUnreachable, closeReason('the desktop refused the RDP security the browser asked for'));
    }
    if (confirm.selectedProtocol === PROTOCOL_RDP) {
      tcp.destroy();
      end('target-error: the workstation chose Standard RDP Security (no TLS)');
      return fail({ errorCode: RDCLEANPATH_GENERAL_ERROR, httpStatusCode: RDCLEANPATH_NOT_RDP_STATUS }, TUNNEL_CLOSE.targetUnreachable, 'the desktop offers no TLS for RDP: the browser cannot connect to it', 'standard RDP security');
    }
    if (confirm.rest.length > 0) {
      // Nothing may come before the TLS handshake: bytes here would be lost under the TLS layer.
      tcp.destroy();
      end('target-error: bytes after the X.224 confirm');
      return fail({ errorCode: RDCLEANPATH_GENERAL_ERROR, httpStatusCode: RDCLEANPATH_NOT_RDP_STATUS }, TUNNEL_CLOSE.targetUnreachable, 'the desktop did not answer as an RDP server', 'bytes after the X.224 confirm');
    }

    // Self-signed on xrdp and most workstations: no CA check. The chain goes to the client, which
    // binds CredSSP to the server's key, and to the log so an admin can compare fingerprints.
    const secure = tls.connect({ socket: tcp, rejectUnauthorized: false, ...(net.isIP(host) ? {} : { servername: host }) });
    stream = secure;
    try {
      await step('TLS handshake', STEP_TIMEOUT_MS, new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject)));
    } catch (err) {
      secure.destroy();
      end(`target-error: TLS: ${(err as Error).message}`);
      return fail({ errorCode: RDCLEANPATH_GENERAL_ERROR, tlsAlertCode: tlsAlert(err as Error) }, TUNNEL_CLOSE.targetUnreachable, 'the TLS handshake with the desktop failed', `TLS: ${(err as Error).message}`);
    }
    if (gone()) return void secure.destroy();
    const chain = peerChain(secure);
    const serverAddr = `${tcp.remoteAddress ?? host}:${port}`;
    log.info({ protocol: confirm.selectedProtocol, tls: secure.getProtocol(), certificateSha256: secure.getPeerX509Certificate()?.fingerprint256, chainLength: chain.length }, 'rdcleanpath: TLS with the workstation is up');
    ws.send(encodeRdCleanPath({ version: RDCLEANPATH_VERSION, x224ConnectionPdu: confirm.pdu, serverCertChain: chain, serverAddr }), { binary: true });
    relaying = true;
    relayStream({ ws, stream: secure, admitted, early, handshake, highWaterMark: session.highWaterMark, ended: session.ended });
  })();
};

/** The destination the client named is the grant's workstation (`host`, `host:port`, `[v6]:port`). */
export function destinationIs(destination: string, target: { host: string; port: number }): boolean {
  let host = destination.trim();
  let port = DEFAULT_RDP_PORT;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (v6) {
    host = v6[1]!;
    if (v6[2]) port = Number(v6[2]);
  } else if (host.split(':').length === 2) {
    const [h, p] = host.split(':');
    if (!/^\d+$/.test(p!)) return false;
    host = h!;
    port = Number(p);
  }
  const norm = (h: string) => (net.isIP(h) ? normaliseAddress(h) : h.toLowerCase().replace(/\.$/, ''));
  return port === target.port && norm(host) === norm(target.host);
}

/** The peer's certificates as DER, leaf first (a self-signed chain is one certificate). */
function peerChain(socket: tls.TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  let cert = socket.getPeerCertificate(true) as tls.DetailedPeerCertificate | undefined;
  const seen = new Set<string>();
  while (cert?.raw && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    out.push(Buffer.from(cert.raw));
    cert = cert.issuerCertificate;
  }
  return out;
}

/** The Windows socket error IronRDP names for a connect failure. */
function wsaError(err: NodeJS.ErrnoException): number {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 10061;
    case 'ETIMEDOUT':
      return 10060;
    case 'EHOSTUNREACH':
      return 10065;
    case 'ENETUNREACH':
      return 10051;
    case 'ECONNRESET':
      return 10054;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 11001;
    default:
      return 10060;
  }
}

/** The TLS alert for a failed handshake: the one OpenSSL reports, else handshake_failure (40). */
function tlsAlert(err: Error): number {
  const m = /alert number (\d+)/i.exec(err.message);
  return m ? Number(m[1]) : 40;
}
