import { constants } from 'node:os';
import net from 'node:net';
import type { AuthContext, Connection, ServerChannel, TcpipRequestInfo } from 'ssh2';
import { normaliseAddress } from '../addresses.ts';
import type { Log } from '../log.ts';
import { nativeAdd, nativeBytes, nativeClose, nativeEndReason, type NativeEnd } from '../native-relay.ts';
import { boundHalfClose } from '../half-close.ts';
import { detachSocket, socketFd } from '../relay.ts';
import { REFUSAL_MESSAGES, type Admit, type Admitted, type Refused } from './admission.ts';
import { ssh2Hooks, type ChannelOpenInfo, type Ssh2Hooks } from './ssh2-internals.ts';
import { nativeSshParams, releaseSsh2Connection } from './ssh2-keys.ts';

/**
 * What the jump host answers a channel open with when the native relay takes it: OpenSSH's own
 * figures for a forwarded TCP channel (CHAN_TCP_WINDOW_DEFAULT, CHAN_TCP_PACKET_DEFAULT). The
 * channel number is ours to choose; the connection has no other channel.
 */
const NATIVE_CHANNEL = { ourId: 0, ourWindow: 64 * 32 * 1024, ourMaxPacket: 32 * 1024 };

/** One live jump session, for `SshJumpServer.sessions()`. */
export interface SshJumpSessionInfo {
  grantId: string;
  clientAddress: string;
  target: { host: string; port: number };
  startedAt: Date;
  bytesUp: number;
  bytesDown: number;
  /** Who moves its packets: the native relay's threads (ADR 0033), or ssh2 in Node. */
  relay: 'native' | 'node';
}

/** What every connection of one jump host shares (made once by the server). */
export interface JumpSettings {
  admit: Admit;
  connectTimeoutMs: number;
  /** Hand the channel to the native relay once it is open (ADR 0033). */
  nativeRelay: boolean;
  /** The host key as the relay threads answer a key re-exchange with it (ssh2-keys.ts `rekeyHostKey`); null: they end the session there. */
  rekeyKey: Buffer | null;
  log: Log;
  /** Authentication succeeded (the server stops counting this connection as pre-auth). */
  authenticated(conn: JumpConnection): void;
  /** The relay threads hold the connection now: Node's socket is closed (its end is not this session's). */
  handedOff(conn: JumpConnection, socket: net.Socket): void;
  /** The connection is over, for whatever reason (exactly once). */
  done(conn: JumpConnection): void;
}

/**
 * One TCP connection to the jump host, from the SSH handshake to its end. Its whole life is one
 * session of one grant: the user name (the grant token) is admitted once, the one `direct-tcpip`
 * channel to the grant's target is relayed, and when that channel closes the connection ends.
 */
export class JumpConnection {
  readonly #opts: JumpSettings;
  /** The client's TCP connection (after any PROXY header), which ssh2 runs over; null after the handoff. */
  #socket: net.Socket | null;
  /** The server's: this connection's pre-auth count and timer, until it authenticates or ends. */
  preAuth: { client: string; timer: NodeJS.Timeout } | null = null;
  #client: Connection | null = null;
  #hooks: Ssh2Hooks | null = null;
  /** The one admission of this connection: OpenSSH tries several auth methods, each waits on this. */
  #admission: Promise<Admitted | Refused> | null = null;
  #token: string | null = null;
  #admitted: Admitted | null = null;
  #bannerSent = false;
  #channelClaimed = false;
  /** The client's CHANNEL_OPEN of the one channel (its number, window and packet size). */
  #channelOpen: ChannelOpenInfo | null = null;
  #nativeId = -1;
  #target: net.Socket | null = null;
  #startedAt: Date | null = null;
  #bytesUp = 0;
  #bytesDown = 0;
  #endReason: string | null = null;
  #done = false;
  /** After one side's end while ssh2 relays: the bound on the other side's silence (relay.ts `boundHalfClose`). */
  #halfClose: NodeJS.Timeout | null = null;

  constructor(
    settings: JumpSettings,
    socket: net.Socket,
    readonly clientAddress: string,
    /** The server's key for it (the raw socket's peer address and port). */
    readonly key: string,
  ) {
    this.#opts = settings;
    this.#socket = socket;
  }

  /** ssh2 has read the client's identification line: take over its events. */
  attach(client: Connection): void {
    this.#client = client;
    this.#hooks = ssh2Hooks(client);
    if (!this.#hooks) this.#opts.log.warn({}, 'ssh2 internals changed: refusals go out without their banner and reason text (see ssh2-internals.ts)');
    this.#hooks?.screenChannelOpens((info) => this.#channelRefusal(info));
    client.on('error', (err) => this.#opts.log.debug({ client: this.clientAddress, err }, 'ssh connection error'));
    client.on('authentication', (ctx) => void this.#authenticate(ctx));
    client.on('ready', () => this.#opts.authenticated(this));
    client.on('tcpip', (accept, reject, info) => this.#openTarget(accept, reject, info));
    // Global requests: `tcpip-forward` (ssh -R), `streamlocal-forward`, keepalives. Nothing is
    // served the other way; a keepalive's failure reply still tells OpenSSH we are alive.
    client.on('request', (_accept, reject, name) => {
      this.#opts.log.debug({ client: this.clientAddress, request: name }, 'global request refused');
      reject?.();
    });
    // Sessions (shell, exec, subsystem, and with them agent and X11 forwarding) have no listener:
    // the screen above refuses them with a reason, and without it ssh2 refuses them itself.
    // Not after the handoff, when ssh2's connection is released (and says `close`) while the session runs on.
    client.on('close', () => this.#client === client && this.finish('client-closed'));
  }

  session(): SshJumpSessionInfo | null {
    if (!this.#admitted || !this.#startedAt || this.#done) return null;
    const { grantId, target } = this.#admitted;
    return { grantId, clientAddress: this.clientAddress, target, startedAt: this.#startedAt, ...this.#counts(), relay: this.#nativeId >= 0 ? 'native' : 'node' };
  }

  #counts(): { bytesUp: number; bytesDown: number } {
    if (this.#nativeId < 0) return { bytesUp: this.#bytesUp, bytesDown: this.#bytesDown };
    const [bytesUp, bytesDown] = nativeBytes(this.#nativeId);
    return { bytesUp, bytesDown };
  }

  async #authenticate(ctx: AuthContext): Promise<void> {
    const token = ctx.username.toLowerCase();
    this.#token ??= token;
    this.#admission ??= this.#admit(token);
    const result = await this.#admission;
    if (this.#done) return;
    // The token is the one credential; the method carries nothing we check. OpenSSH tries `none`
    // first, so that is what succeeds in practice. A second user name in one connection is refused
    // (admission was for the first).
    if (result.ok && token === this.#token) return ctx.accept();
    if (!result.ok && !this.#bannerSent) {
      this.#bannerSent = true;
      this.#hooks?.banner(`Stagedoor: ${result.message}`);
    }
    // No methods left to try: OpenSSH stops at once with "Permission denied" after the banner.
    ctx.reject([], false);
  }

  async #admit(token: string): Promise<Admitted | Refused> {
    let result: Admitted | Refused;
    try {
      result = await this.#opts.admit('ssh', token, this.clientAddress);
    } catch (err) {
      // The admitter answers refusals itself; a throw is a bug or a broken channel: fail closed.
      this.#opts.log.error({ client: this.clientAddress, err }, 'admission failed');
      result = { ok: false, reason: 'fail-closed', message: REFUSAL_MESSAGES['fail-closed'] };
    }
    if (!result.ok) {
      this.#opts.log.info({ client: this.clientAddress, reason: result.reason }, 'ssh jump refused');
      return result;
    }
    this.#admitted = result;
    this.#opts.log.info({ grant: result.grantId, client: this.clientAddress, target: `${result.target.host}:${result.target.port}` }, 'ssh jump admitted');
    result.onClose((reason) => this.finish(reason));
    result.countBytes(() => this.#counts());
    // The client left while the broker was claiming: the claim made a session; it is over already.
    if (this.#done) result.ended({ reason: this.#endReason ?? 'client-closed', bytesUp: 0, bytesDown: 0 });
    return result;
  }

  /** Why a channel open is refused, or null to let it through (the one channel to the target). */
  #channelRefusal(info: ChannelOpenInfo | { type: 'direct-tcpip'; data: TcpipRequestInfo }): string | null {
    const admitted = this.#admitted;
    if (!this.#client?.authenticated || !admitted || this.#done) return 'not authenticated';
    if (info.type !== 'direct-tcpip') {
      return `this gateway is an SSH jump host for one Stagedoor connection grant: it only forwards to ${hostPort(admitted.target)} (ssh -J); ${info.type} channels are refused`;
    }
    if (this.#channelClaimed) return 'one forwarded connection per SSH connection to this gateway: connect again for another';
    const { destIP, destPort } = info.data;
    if (!sameTarget(destIP ?? '', destPort ?? 0, admitted.target)) return `this connection grant forwards to ${hostPort(admitted.target)} only`;
    if ('sender' in info) this.#channelOpen = info;
    return null;
  }

  #openTarget(accept: () => ServerChannel, reject: () => void, info: TcpipRequestInfo): void {
    // Checked again: the screen may be missing (ssh2 internals changed), then this is the only check.
    const refusal = this.#channelRefusal({ type: 'direct-tcpip', data: info });
    if (refusal !== null || !this.#admitted) {
      this.#opts.log.info({ client: this.clientAddress, destination: `${info.destIP}:${info.destPort}`, refusal }, 'channel refused');
      return reject();
    }
    this.#channelClaimed = true;
    const { target, grantId } = this.#admitted;
    // Connect first, confirm the channel after: an unreachable desktop shows as OpenSSH's
    // "open failed: connect failed", as it would from sshd.
    const socket = net.connect({ host: target.host, port: target.port });
    this.#target = socket;
    socket.setNoDelay(true);
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), this.#opts.connectTimeoutMs);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      this.#endReason ??= `target-error: ${err.code ?? err.message}`;
      if (!this.#startedAt) reject();
      this.finish(this.#endReason);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      if (this.#done) return void socket.destroy();
      this.#startedAt = new Date();
      const native = this.#handOff(socket);
      this.#opts.log.info({ grant: grantId, client: this.clientAddress, target: hostPort(target), relay: native ? 'native' : 'node' }, 'ssh jump session started');
      if (!native) this.#relay(accept(), socket);
    });
  }

  #relay(channel: ServerChannel, target: net.Socket): void {
    channel.on('data', (d: Buffer) => (this.#bytesUp += d.length));
    target.on('data', (d: Buffer) => (this.#bytesDown += d.length));
    channel.on('error', () => undefined); // a reset shows as the channel's close
    // pipe() half-closes each way (EOF → FIN, FIN → EOF), as sshd's own forwarding does.
    channel.pipe(target);
    target.pipe(channel);
    // After one side's end the other goes on, until it ends too or stays silent past the half-close bound.
    const halfClosed = () => {
      this.#halfClose ??= boundHalfClose(this, () => this.#bytesUp + this.#bytesDown, () => this.finish('closed'));
    };
    channel.once('end', () => {
      this.#endReason ??= 'client-closed';
      halfClosed();
    });
    target.once('end', () => {
      this.#endReason ??= 'target-closed';
      halfClosed();
    });
    target.once('close', () => {
      // A reset target sends no FIN: end the channel ourselves (ssh2 closes a server channel after EOF).
      if (!channel.writableEnded) channel.end();
    });
    // The session is the channel: when it is closed both ways, the connection has done its work.
    channel.once('close', () => this.finish(this.#endReason ?? 'closed'));
  }

  /**
   * Give the connection to the relay threads with ssh2's keys as they stand (ADR 0033): they send the
   * channel's confirmation and move its packets from here on. Only between two packets each way —
   * nothing of the client's unread here, nothing of ssh2's unwritten — and only with keys captured;
   * else false, and ssh2 relays the channel as before.
   */
  #handOff(target: net.Socket): boolean {
    const socket = this.#socket;
    const open = this.#channelOpen;
    if (!this.#opts.nativeRelay || !socket || !this.#client || !open || open.window === undefined || open.packetSize === undefined) return false;
    const clientFd = socketFd(socket);
    const targetFd = socketFd(target);
    if (clientFd < 0 || targetFd < 0 || socket.readableLength > 0 || socket.writableLength > 0 || target.readableLength > 0) return false;
    const params = nativeSshParams(this.#client, { peerId: open.sender, peerWindow: open.window, peerMaxPacket: open.packetSize, ...NATIVE_CHANNEL }, this.#opts.rekeyKey);
    if (!params) return false;
    try {
      this.#nativeId = nativeAdd(clientFd, targetFd, undefined, this, undefined, params);
    } catch (err) {
      this.#opts.log.warn({ client: this.clientAddress, err }, 'ssh jump: the native relay did not take the session; relaying it here');
      return false;
    }
    // ssh2's connection goes with Node's socket: it never hears another byte, nor says one.
    detachSocket(socket);
    detachSocket(target);
    const client = this.#client;
    this.#client = null;
    this.#hooks = null;
    this.#socket = null;
    this.#target = null;
    this.#channelOpen = null;
    this.#token = null;
    releaseSsh2Connection(client);
    this.#opts.handedOff(this, socket);
    return true;
  }

  /** @internal the relay threads finished the session. */
  nativeEnded(end: NativeEnd): void {
    this.#nativeId = -1;
    this.#bytesUp = end.bytesUp;
    this.#bytesDown = end.bytesDown;
    // ENOTSUP from the client is a key re-exchange the relay could not answer (ssh_kex.c): say so, it reads as a cut otherwise.
    this.#endReason ??= end.side === 0 && end.errno === ENOTSUP ? 'client-rekey: a key re-exchange the gateway cannot answer (it offers curve25519-sha256, ssh-ed25519, the session\'s cipher, no compression)' : (nativeEndReason(end) ?? 'closed');
    this.finish(this.#endReason);
  }

  /** End the session and the SSH connection, now (also a revoke, a timeout, shutdown). Once. */
  finish(reason: string): void {
    if (this.#done) return;
    this.#endReason ??= reason;
    // The relay threads end it, and say so through nativeEnded (with the bytes), which comes back here.
    if (this.#nativeId >= 0) return nativeClose(this.#nativeId);
    this.#done = true;
    if (this.#halfClose) clearTimeout(this.#halfClose);
    this.#target?.destroy();
    const client = this.#client;
    if (client) {
      try {
        client.end(); // SSH_MSG_DISCONNECT, then FIN
      } catch {
        // the socket is gone already
      }
    }
    // After the DISCONNECT has gone out; a client that never closes its end is cut.
    const socket = this.#socket;
    if (socket) setTimeout(() => socket.destroy(), 2000).unref();
    this.#opts.done(this);
    if (this.#admitted) {
      const outcome = { reason: this.#endReason, bytesUp: this.#bytesUp, bytesDown: this.#bytesDown };
      this.#opts.log.info({ grant: this.#admitted.grantId, client: this.clientAddress, ...outcome }, 'ssh jump session ended');
      this.#admitted.ended(outcome);
    }
  }
}

function hostPort(t: { host: string; port: number }): string {
  return t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

/**
 * `ssh -J` sends the destination as the user typed it (`ssh -J … user@10.0.1.5`, or `[2001:db8::5]`
 * in brackets, or `::ffff:10.0.1.5`): compare addresses in their one canonical form, names without
 * case or a trailing dot. No name is resolved: the grant's target is what the instructions give.
 */
export function sameTarget(host: string, port: number, target: { host: string; port: number }): boolean {
  const canon = (h: string) => normaliseAddress(h.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, ''));
  return port === target.port && canon(host) === canon(target.host);
}

const ENOTSUP = constants.errno.ENOTSUP;
