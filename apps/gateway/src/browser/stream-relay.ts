import type { Duplex } from 'node:stream';
import { closeReason, TUNNEL_CLOSE } from '@stagedoor/contract';
import type { WebSocket } from 'ws';
import { REFUSAL_MESSAGES, type Admitted } from '../routed/admission.ts';
import { closeMessageFor, type EarlyFrame, type TunnelOutcome } from './modes.ts';

/**
 * Relay an admitted browser session between its WebSocket and a stream the handshake already set
 * up (for RDP: the TLS connection to the workstation, whose plaintext the browser's RDP client
 * reads and writes). Backpressure on both sides as in the tunnel relay; `ended` once both are closed.
 * `early` are binary frames that arrived during the handshake, written first.
 */
export function relayStream(opts: {
  ws: WebSocket;
  stream: Duplex;
  admitted: Admitted;
  early: EarlyFrame[];
  /** Bytes already moved during the handshake (counted in the session's figures). */
  handshake: { bytesUp: number; bytesDown: number };
  highWaterMark: number;
  /** The session's report (once). */
  ended: (outcome: TunnelOutcome) => void;
}): void {
  const { ws, stream, admitted, highWaterMark } = opts;
  const low = highWaterMark / 4;
  let bytesUp = opts.handshake.bytesUp;
  let bytesDown = opts.handshake.bytesDown;
  let reason: string | null = null;
  let wsClosed = ws.readyState === ws.CLOSED;
  let streamClosed = stream.destroyed;
  let wsPaused = false;
  let reported = false;

  const finish = () => {
    if (!wsClosed || !streamClosed || reported) return;
    reported = true;
    opts.ended({ reason: reason ?? 'closed', bytesUp, bytesDown });
  };

  admitted.countBytes(() => ({ bytesUp, bytesDown }));
  admitted.onClose((why) => {
    reason ??= why.startsWith('revoked') ? why : `revoked: ${why}`;
    stream.destroy();
    if (ws.readyState === ws.OPEN) ws.close(TUNNEL_CLOSE.closed, closeReason(closeMessageFor(why)));
    setTimeout(() => ws.terminate(), 1000).unref();
  });

  const toTarget = (data: Buffer) => {
    bytesUp += data.length;
    if (!stream.write(data) && !wsPaused) {
      wsPaused = true;
      ws.pause();
    }
  };
  stream.on('drain', () => {
    if (wsPaused) {
      wsPaused = false;
      ws.resume();
    }
  });
  for (const frame of opts.early) {
    if (!frame.isBinary) {
      reason ??= 'client-error: text frame';
      ws.close(TUNNEL_CLOSE.badRequest, closeReason(REFUSAL_MESSAGES['bad-request']));
      break;
    }
    toTarget(frame.data);
  }
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      reason ??= 'client-error: text frame';
      return ws.close(TUNNEL_CLOSE.badRequest, closeReason(REFUSAL_MESSAGES['bad-request']));
    }
    toTarget(data);
  });

  const resumeStream = () => {
    if (stream.isPaused() && ws.bufferedAmount < low) stream.resume();
  };
  stream.on('data', (chunk: Buffer) => {
    bytesDown += chunk.length;
    ws.send(chunk, { binary: true }, resumeStream);
    if (ws.bufferedAmount > highWaterMark) stream.pause();
  });
  stream.on('error', (err: NodeJS.ErrnoException) => {
    reason ??= `target-error: ${err.code ?? err.message}`;
  });
  stream.on('close', () => {
    streamClosed = true;
    reason ??= 'target-closed';
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(1000, 'the desktop closed the connection');
    finish();
  });
  ws.on('close', () => {
    wsClosed = true;
    reason ??= 'client-closed';
    if (!stream.destroyed) stream.end();
    setTimeout(() => stream.destroy(), 5000).unref();
    finish();
  });
  if (wsClosed) {
    stream.destroy();
    finish();
  }
}
