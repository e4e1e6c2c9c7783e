import net from 'node:net';
import { closeReason, TUNNEL_CLOSE, TUNNEL_TEXT_FRAME_CLOSE } from '@stagedoor/contract';
import type { WebSocket } from 'ws';
import { closeMessageFor } from '../browser/modes.ts';
import type { Log } from '../log.ts';
import type { Admitted } from './admission.ts';
import { handOffWebSocket, type TappedTls } from './tunnel-ws-native.ts';

export type { TunnelOutcome } from '../browser/modes.ts';

/**
 * An admitted tunnel: connect to the workstation, say `{"ok":true}`, then move bytes both ways —
 * binary frames to TCP writes and TCP reads to binary frames — with backpressure on each side, so a
 * slow viewer or a slow workstation holds back the other end instead of filling the gateway's memory.
 * `ended` is reported once, after both sides are closed.
 */
export function relayTunnel(opts: {
  ws: WebSocket;
  admitted: Admitted;
  /** Frames that arrived before the workstation answered, in order; also stops the caller's listener. */
  takeEarly: () => Buffer[];
  connectTimeoutMs: number;
  highWaterMark: number;
  /** The session's log (its end is written there). A log, not a callback: a closure made by the caller would keep the caller's scope (the TLS socket, ws) alive as long as a native session lasts. */
  log: Log;
  /** The connection's records were kept (the native relay is on): the relay threads may take the session. */
  native?: TappedTls | null;
}): void {
  const { ws, admitted, highWaterMark } = opts;
  const low = highWaterMark / 4;
  let bytesUp = 0;
  let bytesDown = 0;
  let reason: string | null = null;
  let wsClosed = false;
  let tcpClosed = false;
  let wsPaused = false;
  let reported = false;
  let connected = false;
  let handedOff = false;

  const tcp = net.connect({ host: admitted.target.host, port: admitted.target.port, allowHalfOpen: false });
  tcp.setNoDelay(true); // interactive protocols: a keystroke should not wait for Nagle
  const connectTimer = setTimeout(() => {
    reason ??= 'target-timeout';
    tcp.destroy();
  }, opts.connectTimeoutMs);

  const finish = () => {
    if (!wsClosed || !tcpClosed || reported) return;
    reported = true;
    const outcome = { reason: reason ?? 'closed', bytesUp, bytesDown };
    admitted.ended(outcome);
    opts.log.info({ ...outcome }, 'tunnel session ended');
  };

  // Revoke (the broker released the desktop), a session cap, shutdown: both sides go now. The close
  // frame tells the client why; the terminate that follows does not wait for its answer for long.
  admitted.countBytes(() => ({ bytesUp, bytesDown }));
  admitted.onClose((why) => {
    reason ??= why.startsWith('revoked') ? why : `revoked: ${why}`;
    tcp.destroy();
    if (ws.readyState === ws.OPEN) ws.close(TUNNEL_CLOSE.closed, closeReason(closeMessageFor(why)));
    setTimeout(() => ws.terminate(), 1000).unref();
  });

  tcp.once('connect', () => {
    clearTimeout(connectTimer);
    connected = true;
    if (ws.readyState !== ws.OPEN) return void tcp.destroy();
    const early = opts.takeEarly();
    // A client that waited for the answer: its bytes can go the native way (the relay says `ok`).
    if (opts.native && early.length === 0 && handOffWebSocket({ ws, tls: opts.native, target: tcp, admitted, log: opts.log })) {
      handedOff = true;
      return;
    }
    ws.send('{"ok":true}');
    for (const frame of early) toTarget(frame);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        reason ??= 'client-error: text frame';
        return ws.close(TUNNEL_TEXT_FRAME_CLOSE.code, TUNNEL_TEXT_FRAME_CLOSE.reason);
      }
      toTarget(data);
    });
  });

  const toTarget = (data: Buffer) => {
    bytesUp += data.length;
    if (!tcp.write(data) && !wsPaused) {
      wsPaused = true;
      ws.pause();
    }
  };
  tcp.on('drain', () => {
    if (wsPaused) {
      wsPaused = false;
      ws.resume();
    }
  });

  const resumeTcp = () => {
    if (tcp.isPaused() && ws.bufferedAmount < low) tcp.resume();
  };
  tcp.on('data', (chunk: Buffer) => {
    bytesDown += chunk.length;
    ws.send(chunk, { binary: true }, resumeTcp);
    if (ws.bufferedAmount > highWaterMark) tcp.pause();
  });

  tcp.on('error', (err: NodeJS.ErrnoException) => {
    reason ??= !connected ? `target-unreachable: ${err.code ?? err.message}` : `target-error: ${err.code ?? err.message}`;
  });
  tcp.on('close', () => {
    tcpClosed = true;
    clearTimeout(connectTimer);
    reason ??= 'target-closed';
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) {
      if (!connected) ws.close(TUNNEL_CLOSE.targetUnreachable, closeReason('the desktop did not accept the connection: try again shortly'));
      else ws.close(1000, 'the desktop closed the connection');
    }
    finish();
  });

  ws.on('close', () => {
    if (handedOff) return; // the relay threads report the session
    wsClosed = true;
    reason ??= 'client-closed';
    // The client's bytes already written still reach the workstation; then TCP closes.
    if (!tcp.destroyed) tcp.end();
    setTimeout(() => tcp.destroy(), 5000).unref();
    finish();
  });
}
