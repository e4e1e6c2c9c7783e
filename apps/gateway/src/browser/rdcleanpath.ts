import net from 'node:net';
import tls from 'node:tls';
import {
  closeReason,
  RDCLEANPATH_NOT_RDP_STATUS,
  RDCLEANPATH_REFUSAL_STATUS,
  RDCLEANPATH_WRONG_DESTINATION_STATUS,
  TUNNEL_CLOSE,
} from '@stagedoor/contract';
import type { WebSocket } from 'ws';
import { normaliseAddress } from '../addresses.ts';
import type { Log } from '../log.ts';
import { REFUSAL_MESSAGES, type Admit, type Admitted } from '../routed/admission.ts';
import { parseRdpConnectionRequest } from '../routed/rdp-routing.ts';
import { DerError, decodeRdCleanPath, encodeRdCleanPath, rdCleanPathLength, RDCLEANPATH_GENERAL_ERROR, RDCLEANPATH_NEGOTIATION_ERROR, RDCLEANPATH_VERSION, type RdCleanPathError } from './rdcleanpath-der.ts';
import { readConnectionConfirm } from './x224-confirm.ts';
import { relayStream } from './stream-relay.ts';

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
export interface RdCleanPathOptions {
  admit: Admit;
  log: Log;
  connectTimeoutMs: number;
  highWaterMark: number;
  /** The request PDU, the workstation's confirm and its TLS handshake each have this long (default 10 s). */
  stepTimeoutMs?: number;
}

/** A request is a few hundred bytes (a token, an address, a short X.224 request). */
const MAX_REQUEST = 16 * 1024;
const DEFAULT_RDP_PORT = 3389;
/** MS-RDPBCGR 2.2.1.2.1: the protocols a server may select; 0 is Standard RDP Security, no TLS. */
const PROTOCOL_RDP = 0;

/** Whether the first frame of a tunnel WebSocket is an RDCleanPath request (a DER SEQUENCE). */
export function isRdCleanPathFrame(data: Buffer, isBinary: boolean): boolean {
  return isBinary && data.length > 0 && data[0] === 0x30;
}

export function serveRdCleanPath(ws: WebSocket, first: Buffer, client: string, opts: RdCleanPathOptions): void {
  const log = opts.log.child({ listener: 'tunnel', mode: 'rdcleanpath', client });
  const stepMs = opts.stepTimeoutMs ?? 10_000;
  let got = first;
  let done = false;
  const early: Buffer[] = [];
  let earlyBytes = 0;

  const fail = (error: RdCleanPathError, code: number, words: string, why: string) => {
    log.info({ why, ...error }, 'rdcleanpath refused');
    if (ws.readyState !== ws.OPEN) return;
    ws.send(encodeRdCleanPath({ version: RDCLEANPATH_VERSION, error }), { binary: true });
    ws.close(code, closeReason(words));
  };
  const badRequest = (why: string) => fail({ errorCode: RDCLEANPATH_GENERAL_ERROR, httpStatusCode: 400 }, TUNNEL_CLOSE.badRequest, REFUSAL_MESSAGES['bad-request'], why);

  const timer = setTimeout(() => badRequest('no complete RDCleanPath request in time'), stepMs);
  const onMessage = (data: Buffer, isBinary: boolean) => {
    if (done) {
      // A client that does not wait for the response: kept in order, written once TLS is up.
      earlyBytes += data.length;
      if (!isBinary || earlyBytes > opts.highWaterMark) ws.close(TUNNEL_CLOSE.badRequest, closeReason(REFUSAL_MESSAGES['bad-request']));
      else early.push(data);
      return;
    }
    if (!isBinary) return void (clearTimeout(timer), badRequest('a text frame in the RDCleanPath request'));
    got = Buffer.concat([got, data]);
    take();
  };
  const take = () => {
    let length: number | null;
    try {
      length = rdCleanPathLength(got);
    } catch (err) {
      clearTimeout(timer);
      return badRequest((err as Error).message);
    }
    if ((length ?? got.length) > MAX_REQUEST) {
      clearTimeout(timer);
      return badRequest('request too large');
    }
    if (length === null || got.length < length) return;
    clearTimeout(timer);
    done = true;
    if (got.length > length) early.push(got.subarray(length));
    void handshake(got.subarray(0, length));
  };
  ws.on('message', onMessage);
  ws.once('close', () => clearTimeout(timer));

  const handshake = async (bytes: Buffer) => {
    let request;
    try {
      request = decodeRdCleanPath(bytes);
    } catch (err) {
      return badRequest(err instanceof DerError ? err.message : 'undecodable request');
    }
    if (request.version !== RDCLEANPATH_VERSION) return badRequest(`version ${request.version}`);
    if (request.error || request.serverCertChain || request.serverAddr) return badRequest('a response where a request was expected');
    if (!request.proxyAuth) {
      return fail({ errorCode: RDCLEANPATH_GENERAL_ERROR, httpStatusCode: RDCLEANPATH_REFUSAL_STATUS['no-token'] }, TUNNEL_CLOSE.refused, REFUSAL_MESSAGES['no-token'], 'no proxy_auth');
    }
    // Preconnection blobs (Hyper-V VM connect) are for Hyper-V hosts, which Stagedoor does not route.
    if (request.destination === undefined || request.x224ConnectionPdu === undefined || request.preconnectionBlob !== undefined) {
      return badRequest('not an ordinary RDCleanPath request (destination and X.224 request, no preconnection blob)');
    }
    const x224 = parseRdpConnectionRequest(request.x224ConnectionPdu);
    if (x224.kind !== 'ok') return badRequest(`X.224 request: ${x224.kind === 'invalid' ? x224.reason : 'incomplete'}`);
    if (request.x224ConnectionPdu.readUInt16BE(2) !== request.x224ConnectionPdu.length) return badRequest('X.224 request: trailing bytes');

    let r;
    try {
      r = await opts.admit('tunnel', request.proxyAuth, client);
    } catch (err) {
      log.error({ err }, 'rdcleanpath admission failed');
      return fail({ errorCode: RDCLEANPATH_GENERAL_ERROR, httpStatusCode: RDCLEANPATH_REFUSAL_STATUS['claim-timeout'] }, TUNNEL_CLOSE.refused, REFUSAL_MESSAGES['claim-timeout'], 'admission error');
    }
    if (!r.ok) return fail({ errorCode: RDCLEANPATH_GENERAL_ERROR, httpStatusCode: RDCLEANPATH_REFUSAL_STATUS[r.reason] }, TUNNEL_CLOSE.refused, r.message, r.reason);
    const admitted = r;
    const glog = log.child({ grant: admitted.grantId });
    if (!destinationIs(request.destination, admitted.target)) {
      admitted.ended({ reason: `client-error: destination ${request.destination.slice(0, 100)} is not the grant's`, bytesUp: 0, bytesDown: 0 });
      return fail({ errorCode: RDCLEANPATH_GENERAL_ERROR, httpStatusCode: RDCLEANPATH_WRONG_DESTINATION_STATUS }, TUNNEL_CLOSE.refused, 'this session asked for another desktop than the one its grant is for', `destination ${request.destination}`);
    }
    if (ws.readyState !== ws.OPEN) return admitted.ended({ reason: 'client-closed', bytesUp: 0, bytesDown: 0 });
    await connect(admitted, x224.forward, glog);
  };

  const connect = async (admitted: Admitted, x224Request: Buffer, glog: Log) => {
    const { host, port } = admitted.target;
    let ended = false;
    const end = (reason: string) => {
      if (ended) return;
      ended = true;
      admitted.ended({ reason, bytesUp: x224Request.length, bytesDown: 0 });
    };
    // A revoke (the desktop released) while the handshake runs ends it as it would the relay.
    let abort: ((why: string) => void) | null = null;
    admitted.onClose((why) => abort?.(why));
    ws.once('close', () => abort?.('client-closed'));

    const tcp = net.connect({ host, port });
    tcp.setNoDelay(true);
    abort = (why) => {
      tcp.destroy();
      end(why === 'client-closed' ? why : `revoked: ${why}`);
      if (ws.readyState === ws.OPEN) ws.close(TUNNEL_CLOSE.closed, closeReason(REFUSAL_MESSAGES.closed));
    };
    const step = <T>(what: string, p: Promise<T>): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        const t = setTimeout(() => reject(Object.assign(new Error(`${what}: timed out`), { code: 'ETIMEDOUT' })), what === 'connect' ? opts.connectTimeoutMs : stepMs);
        p.then((v) => (clearTimeout(t), resolve(v)), (e: unknown) => (clearTimeout(t), reject(e as Error)));
      });

    try {
      await step('connect', new Promise<void>((resolve, reject) => tcp.once('connect', resolve).once('error', reject)));
    } catch (err) {
      tcp.destroy();
      end(`target-unreachable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return fail({ errorCode: RDCLEANPATH_GENERAL_ERROR, wsaLastError: wsaError(err as NodeJS.ErrnoException) }, TUNNEL_CLOSE.targetUnreachable, 'the desktop did not accept the connection: try again shortly', 'connect');
    }
    tcp.write(x224Request);
    let confirm;
    try {
      confirm = await step('X.224 confirm', readConnectionConfirm(tcp));
    } catch (err) {
      tcp.destroy();
      end(`target-error: X.224 confirm: ${(err as Error).message}`);
      return fail({ errorCode: RDCLEANPATH_GENERAL_ERROR, httpStatusCode: RDCLEANPATH_NOT_RDP_STATUS }, TUNNEL_CLOSE.targetUnreachable, 'the desktop did not answer as an RDP server', `X.224 confirm: ${(err as Error).message}`);
    }
    if (confirm.failureCode !== null) {
      tcp.destroy();
      end(`target-error: RDP negotiation failure ${confirm.failureCode}`);
      glog.info({ failureCode: confirm.failureCode }, 'rdcleanpath: the workstation refused the RDP negotiation');
      if (ws.readyState !== ws.OPEN) return;
      ws.send(encodeRdCleanPath({ version: RDCLEANPATH_VERSION, error: { errorCode: RDCLEANPATH_NEGOTIATION_ERROR }, x224ConnectionPdu: confirm.pdu }), { binary: true });
      return ws.close(TUNNEL_CLOSE.targetUnreachable, closeReason('the desktop refused the RDP security the browser asked for'));
    }
    if (confirm.selectedProtocol === PROTOCOL_RDP) {
      tcp.destroy();
      end('target-error: the workstation chose Standard RDP Security (no TLS)');
      return fail({ errorCode: RDCLEANPATH_GENERAL_ERROR, httpStatusCode: RDCLEANPATH_NOT_RDP_STATUS }, TUNNEL_CLOSE.targetUnreachable, 'the desktop offers no TLS for RDP: the browser cannot connect to it', 'standard RDP security');
    }
    if (confirm.rest.length > 0) tcp.unshift(confirm.rest);

    // Self-signed on xrdp and most workstations: no CA check. The chain goes to the client, which
    // binds CredSSP to the server's key, and to the log so an admin can compare fingerprints.
    const secure = tls.connect({ socket: tcp, rejectUnauthorized: false, ...(net.isIP(host) ? {} : { servername: host }) });
    abort = (why) => {
      secure.destroy();
      end(why === 'client-closed' ? why : `revoked: ${why}`);
      if (ws.readyState === ws.OPEN) ws.close(TUNNEL_CLOSE.closed, closeReason(REFUSAL_MESSAGES.closed));
    };
    try {
      await step('TLS handshake', new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject)));
    } catch (err) {
      secure.destroy();
      end(`target-error: TLS: ${(err as Error).message}`);
      return fail({ errorCode: RDCLEANPATH_GENERAL_ERROR, tlsAlertCode: tlsAlert(err as Error) }, TUNNEL_CLOSE.targetUnreachable, 'the TLS handshake with the desktop failed', `TLS: ${(err as Error).message}`);
    }
    if (ended) return void secure.destroy();
    abort = null;
    const chain = peerChain(secure);
    const serverAddr = `${tcp.remoteAddress ?? host}:${port}`;
    glog.info({ target: `${host}:${port}`, protocol: confirm.selectedProtocol, tls: secure.getProtocol(), certificateSha256: secure.getPeerX509Certificate()?.fingerprint256, chainLength: chain.length }, 'rdcleanpath session started');
    const response = encodeRdCleanPath({ version: RDCLEANPATH_VERSION, x224ConnectionPdu: confirm.pdu, serverCertChain: chain, serverAddr });
    ws.send(response, { binary: true });
    ws.removeListener('message', onMessage);
    relayStream({
      ws,
      stream: secure,
      admitted,
      early: early.splice(0),
      handshake: { bytesUp: x224Request.length, bytesDown: confirm.pdu.length },
      highWaterMark: opts.highWaterMark,
      onEnd: (outcome) => glog.info({ ...outcome }, 'rdcleanpath session ended'),
    });
  };

  take();
}

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
