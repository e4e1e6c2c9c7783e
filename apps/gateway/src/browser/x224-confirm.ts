import type { Socket } from 'node:net';

/**
 * The workstation's answer to the X.224 Connection Request (MS-RDPBCGR 2.2.1.2): TPKT + X.224
 * Connection Confirm, then an RDP Negotiation Response (the protocol the server selected) or an RDP
 * Negotiation Failure (its code). No negotiation data at all means Standard RDP Security.
 */
export interface ConnectionConfirm {
  /** The whole PDU, as the client must see it. */
  pdu: Buffer;
  /** PROTOCOL_RDP 0, PROTOCOL_SSL 1, PROTOCOL_HYBRID 2, …; null with a failure. */
  selectedProtocol: number | null;
  failureCode: number | null;
  /** Bytes that came after the PDU (none expected before TLS; handed back to the socket). */
  rest: Buffer;
}

const TPKT_VERSION = 0x03;
const X224_CONNECTION_CONFIRM = 0xd0;
const FIXED = 11;
const TYPE_RDP_NEG_RSP = 0x02;
const TYPE_RDP_NEG_FAILURE = 0x03;
const MAX_CONFIRM = 1024;

export type ConfirmParse = { kind: 'incomplete' } | { kind: 'invalid'; reason: string } | ({ kind: 'ok' } & ConnectionConfirm);

/** Parse what was read so far. Pure. */
export function parseConnectionConfirm(buf: Buffer): ConfirmParse {
  if (buf.length >= 1 && buf[0] !== TPKT_VERSION) return { kind: 'invalid', reason: 'not a TPKT header' };
  if (buf.length < 4) return { kind: 'incomplete' };
  const length = buf.readUInt16BE(2);
  if (length < FIXED || length > MAX_CONFIRM) return { kind: 'invalid', reason: `TPKT length ${length}` };
  if (buf.length < length) return { kind: 'incomplete' };
  if (buf[4]! + 5 !== length) return { kind: 'invalid', reason: 'X.224 length indicator disagrees with the TPKT length' };
  if ((buf[5]! & 0xf0) !== X224_CONNECTION_CONFIRM) return { kind: 'invalid', reason: 'not an X.224 Connection Confirm' };
  const pdu = Buffer.from(buf.subarray(0, length));
  const rest = Buffer.from(buf.subarray(length));
  const neg = pdu.subarray(FIXED);
  if (neg.length === 0) return { kind: 'ok', pdu, selectedProtocol: 0, failureCode: null, rest };
  if (neg.length < 8) return { kind: 'invalid', reason: 'short RDP negotiation data' };
  if (neg[0] === TYPE_RDP_NEG_RSP) return { kind: 'ok', pdu, selectedProtocol: neg.readUInt32LE(4), failureCode: null, rest };
  if (neg[0] === TYPE_RDP_NEG_FAILURE) return { kind: 'ok', pdu, selectedProtocol: null, failureCode: neg.readUInt32LE(4), rest };
  return { kind: 'invalid', reason: `unknown RDP negotiation type ${neg[0]}` };
}

/** Read the confirm from a connected socket (the caller bounds the wait). */
export function readConnectionConfirm(socket: Socket): Promise<ConnectionConfirm> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const cleanup = () => {
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const p = parseConnectionConfirm(got);
      if (p.kind === 'incomplete') return;
      cleanup();
      socket.pause();
      if (p.kind === 'invalid') return reject(new Error(p.reason));
      const { kind: _kind, ...confirm } = p;
      resolve(confirm);
    };
    const onError = (err: Error) => (cleanup(), reject(err));
    const onClose = () => (cleanup(), reject(new Error('the workstation closed the connection')));
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('close', onClose);
  });
}
