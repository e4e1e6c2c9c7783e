import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomUUID } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { GATEWAY_CHANNEL_VERSION, GatewayToBroker, type BrokerToGateway, type ChannelGrant, type ClaimMessage, type GatewayReport, type HeartbeatMessage, type HelloMessage, type RefusalReason } from '@stagedoor/contract';

/**
 * A broker stand-in for the benchmark that speaks the real control-channel protocol (the contract's
 * schemas): it enrols the gateway, welcomes it, pushes grants in bulk and acknowledges reports. A
 * real broker would spend the run issuing 20,000 grants through PostgreSQL; this measures the
 * gateway, not the broker.
 *
 * The routed-mode tests use it too, until the broker's side of claims lands: it answers `claim`
 * like ADR 0017's broker for first use (the first claim of a grant wins, later ones are `used`; no
 * reconnect window), or not at all (`claims = 'silent'`, for the fail-closed timeout).
 */
export class FakeBroker {
  readonly #server = http.createServer((req, res) => this.#http(req, res));
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 * 1024 });
  #socket: WebSocket | null = null;
  #welcomed: (() => void) | null = null;
  readonly credential = `sdg_bench_${randomUUID()}`;
  readonly gatewayId = randomUUID();
  sessionsStarted = 0;
  sessionsEnded = 0;
  refused = 0;
  url = '';
  /** How claims are answered: `single-use` (the first claim of each grant), or `silent` (never). */
  claims: 'single-use' | 'silent' = 'single-use';
  readonly claimsSeen: ClaimMessage[] = [];
  /** Every report, in order, when `recordReports` (the routed tests read refusals and session ends from here; the benchmark only counts). */
  readonly reports: GatewayReport[] = [];
  recordReports = false;
  hello: HelloMessage | null = null;
  /** Heartbeats, when `recordReports`. */
  readonly heartbeats: HeartbeatMessage[] = [];
  heartbeatSeconds = 5;
  /** Routed grants sent so far. */
  routedGranted = 0;
  readonly #claimed = new Set<string>();

  async start(host = '127.0.0.1'): Promise<void> {
    this.#server.on('upgrade', (req, socket, head) => {
      if (req.headers.authorization !== `Bearer ${this.credential}`) {
        socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#attach(ws));
    });
    await new Promise<void>((r) => this.#server.listen(0, host, r));
    this.url = `http://${host}:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Resolves once a gateway has said hello and been welcomed. */
  welcomed(): Promise<void> {
    if (this.#socket) return Promise.resolve();
    return new Promise((r) => (this.#welcomed = r));
  }

  /** Grants for `clientAddress` to `target` on each of `ports`; returns their ids. */
  grant(ports: number[], target: { host: string; port: number }, clientAddress = '127.0.0.1'): string[] {
    const validUntil = new Date(Date.now() + 3_600_000).toISOString();
    const ids: string[] = [];
    for (const port of ports) {
      const grant: ChannelGrant = { id: randomUUID(), mode: 'portForward', port, tokenHash: null, clientAddress, targetAddress: target.host, targetPort: target.port, validUntil, sessionUntil: null, inUse: false };
      ids.push(grant.id);
      this.#send({ type: 'grant', grant });
    }
    return ids;
  }

  /** A routed grant (ADR 0017) for the client presenting `token`; returns its id. */
  grantRouted(token: string, target: { host: string; port: number }, clientAddress = '127.0.0.1', opts: { validForMs?: number; sessionForMs?: number } = {}): string {
    const grant: ChannelGrant = {
      id: randomUUID(),
      mode: 'routed',
      port: null,
      tokenHash: createHash('sha256').update(token.toLowerCase()).digest('hex'),
      clientAddress,
      targetAddress: target.host,
      targetPort: target.port,
      validUntil: new Date(Date.now() + (opts.validForMs ?? 3_600_000)).toISOString(),
      sessionUntil: opts.sessionForMs ? new Date(Date.now() + opts.sessionForMs).toISOString() : null,
      inUse: false,
    };
    this.#send({ type: 'grant', grant });
    this.routedGranted++;
    return grant.id;
  }

  /** The reasons of the refusals reported so far, for one grant (null: those naming no grant). */
  refusals(grantId: string | null = null): RefusalReason[] {
    return this.reports.flatMap((r) => (r.type === 'refused' && r.grantId === grantId ? [r.reason] : []));
  }

  revoke(ids: string[]): void {
    for (const grantId of ids) this.#send({ type: 'revoke', grantId, reason: 'revoked: bench' });
  }

  async close(): Promise<void> {
    this.#socket?.terminate();
    this.#wss.close();
    await new Promise((r) => this.#server.close(r));
  }

  #send(msg: BrokerToGateway): void {
    this.#socket?.send(JSON.stringify(msg));
  }

  #attach(ws: WebSocket): void {
    ws.on('message', (data) => {
      // The real schema for the hello; reports are counted and acknowledged without it (cheap, like a real broker's queue).
      const raw = JSON.parse(String(data)) as { type: string; seq?: number };
      const msg = raw.type === 'hello' ? GatewayToBroker.parse(raw) : (raw as GatewayToBroker);
      switch (msg.type) {
        case 'hello':
          this.#socket = ws;
          this.hello = msg;
          ws.send(JSON.stringify({ type: 'welcome', protocol: GATEWAY_CHANNEL_VERSION, gatewayId: this.gatewayId, name: 'bench', cluster: 'bench', status: 'active', brokerNode: 'bench', heartbeatSeconds: this.heartbeatSeconds, grants: [] } satisfies BrokerToGateway));
          this.#welcomed?.();
          return;
        case 'heartbeat':
          if (this.recordReports) this.heartbeats.push(msg);
          return;
        case 'claim': {
          this.claimsSeen.push(msg);
          if (this.claims === 'silent') return;
          const first = !this.#claimed.has(msg.grantId);
          this.#claimed.add(msg.grantId);
          ws.send(JSON.stringify({ type: 'claimed', claimId: msg.claimId, ok: first, reason: first ? null : 'used' } satisfies BrokerToGateway));
          return;
        }
        default: {
          const reports = msg.type === 'batch' ? msg.reports : [msg];
          for (const r of reports) {
            if (this.recordReports) this.reports.push(r);
            if (r.type === 'session-started') this.sessionsStarted++;
            if (r.type === 'session-ended') this.sessionsEnded++;
            if (r.type === 'refused') this.refused++;
          }
          ws.send(JSON.stringify({ type: 'ack', seq: reports.at(-1)!.seq } satisfies BrokerToGateway));
        }
      }
    });
  }

  #http(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method === 'POST' && req.url === '/api/v1/gateways/enroll') {
      req.resume();
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ gatewayId: this.gatewayId, name: 'bench', cluster: 'bench', publicAddress: '127.0.0.1', credential: this.credential }));
      return;
    }
    res.writeHead(404).end();
  }
}
