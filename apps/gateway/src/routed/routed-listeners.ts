import type { RefusalReason, RoutedListener } from '@stagedoor/contract';
import type { AddressList } from '../addresses.ts';
import { BROWSER_MODES } from '../browser/index.ts';
import type { Log } from '../log.ts';
import type { Admit } from './admission.ts';
import { FirstPacketListener, RDP_MODE, TLS_MODE, type FirstPacketMode } from './routed-listener.ts';
import { SshJumpServer } from './ssh-jump.ts';
import type { TlsCertificate } from './tls-certificate.ts';
import { TunnelServer } from './tunnel.ts';

export interface RoutedListenersOptions {
  host: string;
  /** A port per listener, 0 for any free one (tests), null for none. */
  ports: Record<RoutedListener, number | null>;
  proxyProtocol: { enabled: boolean; sources: AddressList };
  admit: Admit;
  /** Refusals a listener makes before any grant is looked at (a bad first packet, a PROXY header). */
  refused: (port: number, clientAddress: string, reason: RefusalReason) => void;
  /** The balancer's health check (`GET /healthz` on the HTTPS listener): a broker channel is up. */
  healthy: () => boolean;
  connectTimeoutMs: number;
  nativeRelay: boolean;
  firstPacket?: { maxBytes: number; timeoutMs: number };
  /** The SSH jump host's private key; without it the SSH listener does not run. */
  sshHostKey: string | null;
  /** The HTTPS listener's certificate; without it the tunnel does not run. */
  certificate: TlsCertificate | null;
  log: Log;
}

/**
 * The routed single-port listeners of one gateway (ADR 0017), all feeding the same admission: RDP
 * by routing token and TLS by SNI (first-packet listeners, then the native relay), the SSH jump host
 * and the HTTPS WebSocket tunnel (which carry their bytes in JavaScript). A listener that cannot bind
 * is logged and the gateway runs on without it (its port is then reported as not running).
 */
export class RoutedListeners {
  readonly #rdp: FirstPacketListener | null;
  readonly #tls: FirstPacketListener | null;
  readonly #ssh: SshJumpServer | null;
  readonly #tunnel: TunnelServer | null;
  readonly #bound = { ssh: false, tunnel: false };

  constructor(private readonly opts: RoutedListenersOptions) {
    const log = opts.log;
    const firstPacket = (mode: FirstPacketMode, port: number | null) =>
      port === null
        ? null
        : new FirstPacketListener({ mode, host: opts.host, port, proxyProtocol: opts.proxyProtocol, admit: opts.admit, refused: opts.refused, connectTimeoutMs: opts.connectTimeoutMs, nativeRelay: opts.nativeRelay, firstPacket: opts.firstPacket, log });
    this.#rdp = firstPacket(RDP_MODE, opts.ports.rdp);
    this.#tls = firstPacket(TLS_MODE, opts.ports.tls);
    this.#ssh =
      opts.ports.ssh === null || !opts.sshHostKey
        ? null
        : new SshJumpServer({ hostKey: opts.sshHostKey, listenHost: opts.host, port: opts.ports.ssh, admit: opts.admit, proxyProtocol: opts.proxyProtocol, connectTimeoutMs: opts.connectTimeoutMs, nativeRelay: opts.nativeRelay, log });
    this.#tunnel =
      opts.ports.tunnel === null || !opts.certificate
        ? null
        : new TunnelServer({
            port: opts.ports.tunnel,
            host: opts.host,
            certificate: opts.certificate,
            admit: opts.admit,
            healthy: opts.healthy,
            proxyProtocol: opts.proxyProtocol.enabled ? { sources: opts.proxyProtocol.sources } : null,
            connectTimeoutMs: opts.connectTimeoutMs,
            modes: BROWSER_MODES,
            nativeRelay: opts.nativeRelay,
            log,
          });
  }

  /** Resolves once every listener listens or failed to (logged). */
  async listen(): Promise<void> {
    const failed = (listener: string) => (err: unknown) => {
      this.opts.log.error({ listener, err }, `cannot listen for the routed ${listener} mode; the gateway runs on without it`);
      return false;
    };
    await Promise.all([
      this.#rdp?.listen(),
      this.#tls?.listen(),
      this.#ssh?.listen().then(() => (this.#bound.ssh = true), failed('ssh')),
      this.#tunnel?.start().then(() => (this.#bound.tunnel = true), failed('tunnel')),
    ]);
  }

  /** The port a listener accepts on now, or null when it does not run. */
  portOf(listener: RoutedListener): number | null {
    switch (listener) {
      case 'rdp':
        return this.#rdp?.listening ? this.#rdp.port : null;
      case 'tls':
        return this.#tls?.listening ? this.#tls.port : null;
      case 'ssh':
        return this.#ssh && this.#bound.ssh ? this.#ssh.address().port : null;
      case 'tunnel':
        return this.#tunnel && this.#bound.tunnel ? this.#tunnel.port : null;
    }
  }

  close(): void {
    this.#rdp?.close();
    this.#tls?.close();
    void this.#ssh?.close().catch(() => {});
    void this.#tunnel?.close().catch(() => {});
    this.opts.certificate?.close();
  }
}
