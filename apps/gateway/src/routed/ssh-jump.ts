import net from 'node:net';
import type { Server as Ssh2Server } from 'ssh2';
import { NATIVE_SSH_CIPHERS, rekeyHostKey, serverHostKey, ssh2 } from './ssh2-keys.ts';
import { normaliseAddress, type AddressList } from '../addresses.ts';
import type { Log } from '../log.ts';
import { readProxyV2 } from '../proxy-protocol.ts';
import type { Admit } from './admission.ts';
import { JumpConnection, type JumpSettings, type SshJumpSessionInfo } from './ssh-jump-connection.ts';

export type { SshJumpSessionInfo } from './ssh-jump-connection.ts';

export interface SshJumpOptions {
  /** The gateway's host key, an OpenSSH private key (`loadOrCreateSshHostKey(dataDir).privateKey`). */
  hostKey: string | Buffer;
  listenHost: string;
  /** The fixed port (default in the gateway: 22); 0 picks a free one (tests). */
  port: number;
  admit: Admit;
  /** PROXY protocol v2 before the SSH handshake, accepted only from `sources` (the load balancers). */
  proxyProtocol?: { enabled: boolean; sources: AddressList; headerTimeoutMs?: number };
  /** A connection that has not authenticated by then is dropped (default 20 s). */
  authTimeoutMs?: number;
  /** Connections not yet authenticated, per client address (default 10): more are dropped at once. */
  maxPreAuthPerClient?: number;
  /** How long the grant's target may take to accept the forwarded connection (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * Hand each session's channel to the native relay once it is open (ADR 0033). The server then
   * offers AES-GCM ciphers alone, whose keys the relay threads can take over.
   */
  nativeRelay?: boolean;
  log: Log;
}

/**
 * The SSH jump host of the routed modes (ADR 0017, issue 14 point 3): `ssh -J <grant token>@gateway
 * user@desktop`. The gateway is an SSH server that takes the grant token as the user name (no other
 * credential), admits it once per connection through `admit`, and forwards exactly one
 * `direct-tcpip` channel to the grant's target; the user's own SSH session to the desktop runs end
 * to end inside it (the gateway never sees its keys or contents). Everything else is refused:
 * shells, commands, subsystems, other destinations, a second channel, remote forwarding.
 *
 * The listener is our own `net.Server`: it reads the PROXY v2 header (when configured) and counts
 * pre-auth connections per client before ssh2 sees a byte, then hands the socket to ssh2's server
 * (`injectSocket`). ssh2 tells us of the connection at the client's identification line, naming the
 * raw socket's peer address and port, which is how the two are matched (unique among live sockets).
 */
export class SshJumpServer {
  readonly #opts: SshJumpOptions;
  readonly #ssh: Ssh2Server;
  readonly #tcp: net.Server;
  /** By the raw socket's `address|port`, from accept until the socket closes. */
  readonly #conns = new Map<string, JumpConnection>();
  readonly #preAuth = new Map<string, number>();
  readonly #sockets = new Set<net.Socket>();
  /**
   * What every connection shares, made once: an idle session then holds no closures of its own
   * beyond its admission's (a few hundred bytes each; issue 14's budget is 8 KiB per idle session).
   */
  readonly #settings: JumpSettings;

  constructor(opts: SshJumpOptions) {
    this.#opts = opts;
    const algorithms = opts.nativeRelay ? { cipher: NATIVE_SSH_CIPHERS } : undefined;
    this.#ssh = new ssh2.Server({ hostKeys: [serverHostKey(opts.hostKey)], ident: 'Stagedoor', ...(algorithms ? { algorithms } : {}) }, (client, info) => {
      const conn = this.#conns.get(socketKey(info.ip, info.port));
      if (!conn) return void client.end();
      conn.attach(client);
    });
    this.#ssh.on('error', (err: Error) => opts.log.warn({ err }, 'ssh jump server error'));
    this.#settings = {
      admit: opts.admit,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      nativeRelay: opts.nativeRelay ?? false,
      rekeyKey: opts.nativeRelay ? rekeyHostKey(opts.hostKey) : null,
      log: opts.log,
      authenticated: (conn) => this.#endPreAuth(conn),
      handedOff: (_conn, socket) => this.#sockets.delete(socket),
      done: (conn) => {
        this.#endPreAuth(conn);
        if (this.#conns.get(conn.key) === conn) this.#conns.delete(conn.key);
      },
    };
    this.#tcp = net.createServer((socket) => void this.#accept(socket));
    this.#tcp.on('error', (err) => opts.log.error({ err }, 'ssh jump listener error'));
  }

  listen(): Promise<this> {
    return new Promise((resolve, reject) => {
      this.#tcp.once('error', reject);
      this.#tcp.listen(this.#opts.port, this.#opts.listenHost, () => {
        this.#tcp.removeListener('error', reject);
        this.#opts.log.info({ listen: `${this.#opts.listenHost}:${this.address().port}` }, 'ssh jump host listening');
        resolve(this);
      });
    });
  }

  address(): net.AddressInfo {
    return this.#tcp.address() as net.AddressInfo;
  }

  sessions(): SshJumpSessionInfo[] {
    return [...this.#conns.values()].flatMap((c) => c.session() ?? []);
  }

  /** Stop listening and end every connection (each live session reports `gateway-stopping`). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#tcp.close(() => resolve()));
    for (const conn of [...this.#conns.values()]) conn.finish('gateway-stopping');
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  async #accept(socket: net.Socket): Promise<void> {
    socket.on('error', () => undefined); // a reset client must not crash anything; ssh2 sees its own errors
    socket.setNoDelay(true);
    this.#sockets.add(socket);
    const key = socketKey(socket.remoteAddress, socket.remotePort);
    const peer = normaliseAddress(socket.remoteAddress);
    let conn: JumpConnection | null = null;
    const authTimer = setTimeout(() => {
      this.#opts.log.info({ client: conn?.clientAddress ?? peer }, 'ssh jump: no authentication in time, dropped');
      if (conn) conn.finish('auth-timeout');
      socket.destroy();
    }, this.#opts.authTimeoutMs ?? 20_000);
    // Until the handoff to the native relay, if there is one (it removes this listener).
    socket.once('close', () => {
      clearTimeout(authTimer);
      this.#sockets.delete(socket);
      if (conn) {
        this.#endPreAuth(conn);
        conn.finish('client-closed');
        if (this.#conns.get(key) === conn) this.#conns.delete(key);
      }
    });

    let client = peer;
    let rest: Buffer | null = null;
    const proxy = this.#opts.proxyProtocol;
    if (proxy?.enabled) {
      if (!proxy.sources.has(peer)) {
        // Not one of the load balancers: its header would name any client it likes.
        this.#opts.log.warn({ peer }, 'ssh jump: a connection from a peer outside STAGEDOOR_GATEWAY_PROXY_SOURCES: refused');
        return void socket.destroy();
      }
      const header = await readProxyV2(socket, proxy.headerTimeoutMs ?? 5000);
      if (header.kind === 'invalid') {
        this.#opts.log.warn({ peer, reason: header.reason }, 'ssh jump: bad PROXY header: refused');
        return void socket.destroy();
      }
      if (header.source) client = normaliseAddress(header.source.address);
      rest = header.rest;
    }
    if (socket.destroyed) return;

    const max = this.#opts.maxPreAuthPerClient ?? 10;
    const pending = this.#preAuth.get(client) ?? 0;
    if (pending >= max) {
      this.#opts.log.warn({ client, pending }, 'ssh jump: too many unauthenticated connections from one client: dropped');
      return void socket.destroy();
    }
    this.#preAuth.set(client, pending + 1);
    conn = new JumpConnection(this.#settings, socket, client, key);
    conn.preAuth = { client, timer: authTimer };
    this.#conns.set(key, conn);
    if (rest?.length) socket.unshift(rest);
    this.#ssh.injectSocket(socket); // ssh2 resumes the socket when its crypto is ready
  }

  /** The connection authenticated, or ended: it no longer counts against its client's pre-auth limit. */
  #endPreAuth(conn: JumpConnection): void {
    if (!conn.preAuth) return;
    const { client, timer } = conn.preAuth;
    conn.preAuth = null;
    clearTimeout(timer);
    const n = (this.#preAuth.get(client) ?? 1) - 1;
    if (n > 0) this.#preAuth.set(client, n);
    else this.#preAuth.delete(client);
  }
}

function socketKey(address: string | undefined, port: number | undefined): string {
  return `${address ?? ''}|${port ?? 0}`;
}
