import type { Protocol, ProtocolPlanEntry } from '../../db/schema/policies.ts';
import type { WorkstationProtocol } from '../../db/schema/providers.ts';
import type { Clock } from '../clock.ts';
import type { PolicyWithLinks } from '../policies/policies.repository.ts';
import type { WorkstationRow, WorkstationsRepository } from '../workstations/workstations.repository.ts';
import { renderInstructions } from './connection-files.ts';
import type { ConnectionRow, ConnectionsRepository, GrantRow } from './connections.repository.ts';
import { grantStatus, type GrantStatus } from './grant-status.ts';
import { ROUTED_LISTENER_OF, renderRouted, type RoutedInstructions } from './routed-instructions.ts';
import type { GrantIssuer, PoolLaunches } from './ports.ts';
import type { KnownContext } from './connections.service.ts';

/** Typical boot time, for the progress estimate while a machine is pending. */
const EXPECTED_BOOT_MS = 90_000;

export type Stage = 'assigned' | 'launching' | 'booting' | 'starting' | 'ready' | 'failed' | 'closed';

export interface ConnectionView {
  connection: ConnectionRow;
  workstation: WorkstationRow | undefined;
  poolId: string | null;
  progress: { stage: Stage; percent: number; message: string };
  /** The connection's newest grant, as the client may describe it (null: direct, or none yet). */
  grant: GrantStatus | null;
  instructions: null | {
    protocol: Protocol;
    host: string;
    port: number;
    viaGateway: boolean;
    gatewayMode: 'portForward' | 'routed' | null;
    connectBy: Date | null;
    fileName: string | null;
    file: string | null;
    command: string | null;
    /** Routed, for the owner only, while the grant lives. */
    token: string | null;
    sshConfig: string | null;
    knownHosts: string | null;
    tunnel: RoutedInstructions['tunnel'] | null;
    /** The plan offers this protocol in a browser tab (routed, for the owner, while the grant lives). */
    browser: { viewOnly: boolean } | null;
  };
}

const NOT_ROUTED = { token: null, sshConfig: null, knownHosts: null, tunnel: null, browser: null };

/**
 * Where a connection stands, computed from the machine's power state (what the provider last
 * said): launching → booting → ready. Reaching `running` moves the connection to `ready` (once,
 * whichever node sees it first) and, through a gateway, issues a grant bound to the client address.
 */
export class ConnectionStatus {
  constructor(
    private readonly deps: {
      repo: ConnectionsRepository;
      workstations: WorkstationsRepository;
      gateways: GrantIssuer;
      pools: PoolLaunches;
      clock: Clock;
      protocolsOf: (policy: PolicyWithLinks) => Promise<ProtocolPlanEntry[]>;
      policyOf: (policyId: string | null) => Promise<PolicyWithLinks | undefined>;
      /** A gateway grant must be used within this long after it is shown to the user (STAGEDOOR_GRANT_CONNECT_BY_SECONDS). */
      connectByMs: number;
    },
  ) {}

  /**
   * Where the connection stands, moving it on (ready, a grant) as its owner polls. `readOnly` — an
   * admin or auditor looking at someone else's connection — changes nothing: no state moves, no
   * grant is issued (an existing one is shown).
   */
  async describe(conn: ConnectionRow, username: string, known?: KnownContext, opts: { readOnly?: boolean } = {}): Promise<ConnectionView> {
    const readOnly = opts.readOnly === true;
    const now = this.deps.clock.now();
    const ws = known?.workstation ?? (conn.workstationId ? await this.deps.workstations.findById(conn.workstationId) : undefined);
    const assignment = known?.assignment ?? (conn.assignmentId ? await this.deps.repo.findAssignment(conn.assignmentId) : undefined);
    const base = { connection: conn, workstation: ws, poolId: assignment?.poolId ?? null, instructions: null, grant: null };
    if (conn.state === 'closed' || conn.state === 'failed') {
      const last = conn.viaGateway ? await this.deps.repo.anyGrant(conn.id) : undefined;
      return { ...base, grant: last ? grantStatus(last, now) : null, progress: { stage: conn.state, percent: conn.state === 'closed' ? 100 : 0, message: conn.endReason ?? conn.state } };
    }
    if (!ws || ws.powerState === 'terminated' || ws.powerState === 'unknown') {
      const reason = !ws ? 'the desktop no longer exists' : ws.powerState === 'terminated' ? 'the desktop was terminated, or its launch failed' : 'the provider does not know this desktop';
      const closed = readOnly ? undefined : await this.deps.repo.closeWithGrants(conn.id, 'failed', reason, now);
      if (closed) this.deps.gateways.announceRevoked(closed.grants, reason);
      const failed = closed ?? conn;
      return { ...base, connection: failed, progress: { stage: 'failed', percent: 0, message: reason } };
    }
    if (ws.powerState !== 'running') return { ...base, progress: progressOf(ws, now) };

    let current = conn;
    if (conn.state === 'starting' && !readOnly) current = (await this.deps.repo.transition(conn.id, 'starting', { state: 'ready', readyAt: now, updatedAt: now })) ?? (await this.deps.repo.findConnection(conn.id))!;
    const policy = known?.policy ?? (await this.deps.policyOf(assignment?.policyId ?? null));
    const entries = known?.protocols ?? (policy ? await this.deps.protocolsOf(policy) : []);
    const entry = entries.find((e) => e.protocol === current.protocol) ?? { protocol: current.protocol as Protocol, port: 3389, viaGateway: false };
    const port = (ws.protocols as WorkstationProtocol[] | null)?.find((p) => p.protocol === entry.protocol)?.port ?? entry.port;
    const found = await this.#grant(current, ws, entry, port, { poolId: assignment?.poolId ?? null, maxSessionMinutes: policy?.maxSessionMinutes ?? null, readOnly }, now);
    if (found === undefined) return { ...base, connection: current, progress: { stage: 'ready', percent: 100, message: 'ready; no grant is issued to anyone but its user' } };
    const lines = (entry.clientOptions as { fileLines?: string[] } | undefined)?.fileLines;
    const withUser = (entry.clientOptions as { username?: string } | undefined)?.username !== 'none';
    const user = withUser ? username : null;
    const status = found ? grantStatus(found, now) : null;
    const live = status?.state === 'unused' || status?.state === 'in-use' || status?.state === 'ended';
    // The connect-by time matters until the first session; after it, only the reconnect window does.
    const connectBy = status?.state === 'unused' ? found!.validUntil : null;
    let instructions: ConnectionView['instructions'];
    if (!found) {
      const rendered = renderInstructions({ protocol: entry.protocol, host: ws.privateAddress!, port, username: user, desktopName: ws.name, extraLines: lines });
      instructions = { protocol: entry.protocol, host: ws.privateAddress!, port, viaGateway: false, gatewayMode: null, connectBy: null, ...rendered, ...NOT_ROUTED };
    } else {
      const gw = await this.deps.gateways.get(found.gatewayId!);
      if (found.mode !== 'routed') {
        const rendered = renderInstructions({ protocol: entry.protocol, host: gw.publicAddress, port: found.gatewayPort!, username: user, desktopName: ws.name, extraLines: lines });
        instructions = { protocol: entry.protocol, host: gw.publicAddress, port: found.gatewayPort!, viaGateway: true, gatewayMode: 'portForward', connectBy, ...rendered, ...NOT_ROUTED };
      } else {
        // The token only for the owner, and only while the grant lives; never logged (ADR 0017).
        const token = !readOnly && live ? this.deps.gateways.grantToken(found) : null;
        const browser = token && entry.browser ? { viewOnly: (entry.clientOptions as { viewOnly?: boolean } | undefined)?.viewOnly === true } : null;
        instructions = token
          ? { protocol: entry.protocol, host: gw.publicAddress, viaGateway: true, gatewayMode: 'routed', connectBy, token, browser, ...renderRouted({ protocol: entry.protocol, connectionId: current.id, host: gw.publicAddress, ports: gw.routedPorts, sniDomain: gw.sniDomain, sshHostKey: gw.sshHostKey, tlsCertificateSha256: gw.tlsCertificateSha256, targetAddress: found.targetAddress, targetPort: found.targetPort, token, username: user, desktopName: ws.name, extraLines: lines, reconnects: found.reconnectWindowSeconds > 0 }) }
          : { protocol: entry.protocol, host: gw.publicAddress, port: gw.routedPorts[ROUTED_LISTENER_OF[entry.protocol]], viaGateway: true, gatewayMode: 'routed', connectBy, fileName: null, file: null, command: null, ...NOT_ROUTED };
      }
    }
    const message = current.state === 'connected' ? 'connected' : status?.state === 'ended' ? `session ended; you may reconnect until ${status.reconnectUntil!.toISOString()}` : 'ready: open the file or run the command';
    return { ...base, connection: current, grant: status, progress: { stage: 'ready', percent: 100, message }, instructions };
  }

  /**
   * The grant the instructions are drawn from: the connection's live one, else (the owner asking) a
   * new one; null for a direct connection; undefined when an onlooker finds none (nothing is issued).
   */
  async #grant(conn: ConnectionRow, ws: WorkstationRow, entry: ProtocolPlanEntry, port: number, ctx: { poolId: string | null; maxSessionMinutes: number | null; readOnly: boolean }, now: Date): Promise<GrantRow | null | undefined> {
    if (!ws.privateAddress) throw new Error(`workstation ${ws.name} has no address yet`);
    if (!entry.viaGateway) return null;
    const live = await this.deps.repo.liveGrant(conn.id, now);
    if (live) return live;
    if (conn.state === 'connected' || ctx.readOnly) {
      const last = await this.deps.repo.anyGrant(conn.id);
      if (last) return last;
      if (ctx.readOnly) return undefined;
    }
    const cluster = ctx.poolId ? ((await this.deps.pools.get(ctx.poolId)).gatewayCluster ?? 'default') : 'default';
    const connectBy = new Date(now.getTime() + this.deps.connectByMs);
    const sessionUntil = ctx.maxSessionMinutes ? new Date(now.getTime() + ctx.maxSessionMinutes * 60_000) : null;
    const mode = entry.gatewayMode ?? 'portForward';
    const issued = await this.deps.gateways.issueGrant({
      connectionId: conn.id,
      cluster,
      clientAddress: conn.clientAddress ?? '0.0.0.0',
      targetAddress: ws.privateAddress,
      targetPort: port,
      connectBy,
      sessionUntil,
      mode,
      reconnectWindowSeconds: mode === 'routed' ? (entry.reconnectWindowSeconds ?? 600) : 0,
      requireSniDomain: mode === 'routed' && entry.protocol === 'dcv',
    });
    return (await this.deps.repo.findGrant(issued.grantId))!;
  }
}

function progressOf(ws: WorkstationRow, now: Date): { stage: Stage; percent: number; message: string } {
  if (!ws.externalId) return { stage: 'launching', percent: 5, message: `launching ${ws.name}` };
  if (ws.powerState === 'pending') {
    const elapsed = now.getTime() - ws.powerStateChangedAt.getTime();
    return { stage: 'booting', percent: Math.min(95, 20 + Math.floor((elapsed / EXPECTED_BOOT_MS) * 75)), message: `${ws.name} is booting` };
  }
  return { stage: 'starting', percent: 10, message: `starting ${ws.name}` };
}
