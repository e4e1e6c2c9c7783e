import type net from 'node:net';
import type tls from 'node:tls';
import { closeReason, TUNNEL_CLOSE } from '@stagedoor/contract';
import type { WebSocket } from 'ws';
import { closeMessageFor } from '../browser/modes.ts';
import type { Log } from '../log.ts';
import { nativeAdd, nativeBytes, nativeClose, nativeEndReason, type NativeEnd, type NativeOwner } from '../native-relay.ts';
import { detachSocket, socketFd } from '../relay.ts';
import type { Admitted } from './admission.ts';
import type { RecordTap } from './record-tap.ts';
import { applicationRecords, NATIVE_SUITES, nativeTlsParams, trafficKeys, type TrafficSecrets } from './tls13-keys.ts';

/** An HTTPS connection of the tunnel whose records a RecordTap kept (the native relay is on). */
export interface TappedTls {
  secure: tls.TLSSocket;
  tap: RecordTap;
  secrets: TrafficSecrets;
}

/** The native relay's flag after the TLS parameters: the records carry WebSocket frames (ws_relay.c). */
const WEBSOCKET = Buffer.from([1]);

/** A server frame (unmasked, final) of at most 125 payload bytes: the control frames and the `ok`. */
export function smallFrame(opcode: number, payload: Buffer): Buffer {
  if (payload.length > 125) throw new RangeError('a small frame carries at most 125 bytes');
  return Buffer.concat([Buffer.from([0x80 | opcode, payload.length]), payload]);
}

/** A close frame: its status code, then the reason (cut to what a control frame holds). */
export function closeFrame(code: number, reason: string): Buffer {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(code);
  return smallFrame(0x8, Buffer.concat([payload, Buffer.from(closeReason(reason), 'utf8')]));
}

const OK_FRAME = smallFrame(0x1, Buffer.from('{"ok":true}'));

/**
 * Whether ws holds nothing of the connection: no frame half-read, no message half-assembled, nothing
 * queued to send. It reads ws's private fields (ws 8): if they are not what they were, the answer is
 * no, and Node relays the session as before.
 */
function wsQuiet(ws: WebSocket): boolean {
  const inner = ws as unknown as { _receiver?: { _bufferedBytes?: unknown; _state?: unknown; _fragments?: unknown[] }; _sender?: { _queue?: unknown[]; _bufferedBytes?: unknown } };
  const r = inner._receiver;
  const s = inner._sender;
  return r?._bufferedBytes === 0 && r._state === 0 && r._fragments?.length === 0 && s?._queue?.length === 0 && s._bufferedBytes === 0 && ws.bufferedAmount === 0;
}

/**
 * The tunnel's WebSocket path, once admitted and connected (ADR 0035): give the TLS connection (its
 * keys, the records each side reached) and the workstation's socket to the relay threads, which unmask
 * the client's frames and frame the workstation's bytes from there, as the native mode does without
 * frames. Only between frames with nothing buffered anywhere, with TLS 1.3 and an AES-GCM suite;
 * otherwise (false) Node relays the session, and the client sees no difference.
 */
export function handOffWebSocket(opts: { ws: WebSocket; tls: TappedTls; target: net.Socket; admitted: Admitted; log: Log }): boolean {
  const { ws, target } = opts;
  const { secure, tap, secrets } = opts.tls;
  const suite = NATIVE_SUITES[secure.getCipher()?.standardName ?? ''];
  const clientFd = socketFd(tap.socket);
  const targetFd = socketFd(target);
  if (!suite || !secrets.client || !secrets.server || clientFd < 0 || targetFd < 0) return false;
  if (!tap.quiet || !wsQuiet(ws) || secure.readableLength > 0 || secure.writableLength > 0 || target.readableLength > 0) return false;
  const clientKeys = trafficKeys(suite, secrets.client);
  const serverKeys = trafficKeys(suite, secrets.server);
  const clientSeq = applicationRecords(suite, clientKeys, tap.fromClient.records);
  const serverSeq = applicationRecords(suite, serverKeys, tap.toClient.records);
  // At least the upgrade request and the token message came in records of the application keys.
  if (clientSeq === null || serverSeq === null || clientSeq < 1) return false;
  const session = new NativeWebSocketSession(opts.admitted, opts.log);
  try {
    session.id = nativeAdd(clientFd, targetFd, undefined, session, { params: Buffer.concat([nativeTlsParams(suite, clientKeys, clientSeq, serverKeys, serverSeq), WEBSOCKET]), hello: OK_FRAME });
  } catch {
    return false; // no memory or descriptors for it now: Node relays it
  }
  session.watch();
  tap.handOff();
  ws.terminate(); // destroys the TLS socket; the tap no longer writes or closes the connection
  detachSocket(tap.socket);
  detachSocket(target);
  return true;
}

/** One WebSocket session the relay threads move: its byte counts, its revoke (with a close frame), its end. */
class NativeWebSocketSession implements NativeOwner {
  id = -1;
  #reason: string | null = null;

  constructor(
    private readonly admitted: Admitted,
    private readonly log: Log,
  ) {}

  /** Registered in a method of its own: the closures then keep this session alone alive, not the handoff's scope. */
  watch(): void {
    this.admitted.countBytes(() => this.#counts());
    this.admitted.onClose((why) => this.#close(why));
  }

  #counts(): { bytesUp: number; bytesDown: number } {
    if (this.id < 0) return { bytesUp: 0, bytesDown: 0 };
    const [bytesUp, bytesDown] = nativeBytes(this.id);
    return { bytesUp, bytesDown };
  }

  #close(why: string): void {
    this.#reason ??= why.startsWith('revoked') ? why : `revoked: ${why}`;
    if (this.id >= 0) nativeClose(this.id, closeFrame(TUNNEL_CLOSE.closed, closeMessageFor(why)));
  }

  /** @internal the relay threads finished it. */
  nativeEnded(end: NativeEnd): void {
    this.id = -1;
    const outcome = { reason: this.#reason ?? nativeEndReason(end) ?? 'closed', bytesUp: end.bytesUp, bytesDown: end.bytesDown };
    this.admitted.ended(outcome);
    this.log.info({ ...outcome }, 'tunnel session ended');
  }
}
