import { createRequire } from 'node:module';
import type { Connection } from 'ssh2';

/**
 * The two things the jump host must say that ssh2's public server API cannot (ssh2 1.17):
 *
 * - A user-auth banner per connection, after the user name (the grant token) is known. ssh2's only
 *   banner is the server-wide `banner` option, sent with SERVICE_ACCEPT, before any user name
 *   arrives; RFC 4252 §5.4 lets a server send SSH_MSG_USERAUTH_BANNER at any time before success,
 *   and OpenSSH prints it on stderr, so the refusal's reason reaches the user's terminal.
 * - A channel open refusal with reason "administratively prohibited" and a description. ssh2's
 *   `reject()` for a channel it handed us always says "connect failed" with no text.
 *
 * Both go through the connection's protocol object (`_protocol`, its packet writer and its message
 * handler table), the same calls ssh2 makes for its own banner and refusals. They are confined
 * here and feature-checked: when an ssh2 upgrade moves them, `hooks` is null, the jump host still
 * refuses everything it must (with ssh2's plainer public refusals) and logs that the words are gone;
 * the jump host's test fails on the missing banner text, so an upgrade cannot drop them silently.
 * package.json pins ssh2 to 1.17.x for this reason.
 */

interface PacketWriter {
  allocStart: number;
  alloc(size: number): Buffer;
  finalize(packet: Buffer): Buffer;
}

export interface ChannelOpenInfo {
  type: string;
  sender: number;
  /** The client's initial window and largest packet for the channel (RFC 4254 5.1). */
  window?: number;
  packetSize?: number;
  data: { destIP?: string; destPort?: number; srcIP?: string; srcPort?: number };
}

type ChannelOpenHandler = (proto: unknown, info: ChannelOpenInfo) => void;

interface ProtocolInternals {
  _packetRW?: { write?: PacketWriter };
  _handlers?: { CHANNEL_OPEN?: ChannelOpenHandler };
  channelOpenFail?: (remote: number, reason: number, description: string) => void;
}

const require = createRequire(import.meta.url);
const protocolUtils = require('ssh2/lib/protocol/utils.js') as { sendPacket?: (proto: unknown, packet: Buffer) => boolean };

const USERAUTH_BANNER = 53;
/** RFC 4254 §5.1 SSH_OPEN_ADMINISTRATIVELY_PROHIBITED: OpenSSH prints "open failed: administratively prohibited: <text>". */
export const OPEN_ADMINISTRATIVELY_PROHIBITED = 1;

export interface Ssh2Hooks {
  /** Send SSH_MSG_USERAUTH_BANNER with `text` (a line end is added). Only before auth succeeds. */
  banner(text: string): void;
  /**
   * Look at every channel open first: return a refusal text to refuse it as administratively
   * prohibited, or null to let ssh2 handle it (it then emits `tcpip` for direct-tcpip).
   */
  screenChannelOpens(screen: (info: ChannelOpenInfo) => string | null): void;
}

export function ssh2Hooks(connection: Connection): Ssh2Hooks | null {
  const proto = (connection as unknown as { _protocol?: ProtocolInternals })._protocol;
  const handlers = proto?._handlers;
  const sendPacket = protocolUtils.sendPacket;
  const openFail = proto?.channelOpenFail;
  if (!proto || typeof proto._packetRW?.write?.alloc !== 'function' || !handlers || typeof handlers.CHANNEL_OPEN !== 'function' || !sendPacket || !openFail) return null;
  return {
    banner(text) {
      // The writer is looked up now, not at attach: ssh2 replaces it when the key exchange ends.
      const writer = proto._packetRW?.write;
      if (!writer) return;
      const body = Buffer.from(text.endsWith('\r\n') ? text : `${text}\r\n`, 'utf8');
      let p = writer.allocStart;
      const packet = writer.alloc(1 + 4 + body.length + 4);
      packet[p] = USERAUTH_BANNER;
      packet.writeUInt32BE(body.length, ++p);
      body.copy(packet, (p += 4));
      packet.writeUInt32BE(0, p + body.length); // empty language tag
      sendPacket(proto, writer.finalize(packet));
    },
    screenChannelOpens(screen) {
      const original = handlers.CHANNEL_OPEN!;
      handlers.CHANNEL_OPEN = (p, info) => {
        const refusal = screen(info);
        if (refusal === null) return original(p, info);
        openFail.call(proto, info.sender, OPEN_ADMINISTRATIVELY_PROHIBITED, refusal);
      };
    },
  };
}
