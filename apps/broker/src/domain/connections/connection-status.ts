import type { Protocol, ProtocolPlanEntry } from '../../db/schema/policies.ts';
import type { WorkstationProtocol } from '../../db/schema/providers.ts';
import type { Clock } from '../clock.ts';
import type { PolicyWithLinks } from '../policies/policies.repository.ts';
import type { WorkstationRow, WorkstationsRepository } from '../workstations/workstations.repository.ts';
import { renderInstructions } from './connection-files.ts';
import type { ConnectionRow, ConnectionsRepository } from './connections.repository.ts';
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
  instructions: null | {
    protocol: Protocol;
    host: string;
    port: number;
    viaGateway: boolean;
    connectBy: Date | null;
    fileName: string | null;
    file: string | null;
    command: string | null;
  };
}

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
    const base = { connection: conn, workstation: ws, poolId: assignment?.poolId ?? null, instructions: null };
    if (conn.state === 'closed' || conn.state === 'failed') {
      return { ...base, progress: { stage: conn.state, percent: conn.state === 'closed' ? 100 : 0, message: conn.endReason ?? conn.state } };
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
    const target = await this.#target(current, ws, entry, port, { poolId: assignment?.poolId ?? null, maxSessionMinutes: policy?.maxSessionMinutes ?? null, readOnly }, now);
    if (!target) return { ...base, connection: current, progress: { stage: 'ready', percent: 100, message: 'ready; no grant is issued to anyone but its user' } };
    const lines = (entry.clientOptions as { fileLines?: string[] } | undefined)?.fileLines;
    const withUser = (entry.clientOptions as { username?: string } | undefined)?.username !== 'none';
    const rendered = renderInstructions({ protocol: entry.protocol, host: target.host, port: target.port, username: withUser ? username : null, desktopName: ws.name, extraLines: lines });
    return {
      ...base,
      connection: current,
      progress: { stage: 'ready', percent: 100, message: current.state === 'connected' ? 'connected' : 'ready: open the file or run the command' },
      instructions: { protocol: entry.protocol, host: target.host, port: target.port, viaGateway: entry.viaGateway, connectBy: target.connectBy, ...rendered },
    };
  }

  async #target(conn: ConnectionRow, ws: WorkstationRow, entry: ProtocolPlanEntry, port: number, ctx: { poolId: string | null; maxSessionMinutes: number | null; readOnly: boolean }, now: Date) {
    if (!ws.privateAddress) throw new Error(`workstation ${ws.name} has no address yet`);
    if (!entry.viaGateway) return { host: ws.privateAddress, port, connectBy: null };
    const usable = await this.deps.repo.usableGrant(conn.id, now);
    if (usable) return { host: (await this.deps.gateways.get(usable.gatewayId!)).publicAddress, port: usable.gatewayPort, connectBy: usable.validUntil };
    if (conn.state === 'connected' || ctx.readOnly) {
      const last = await this.deps.repo.anyGrant(conn.id);
      if (last) return { host: (await this.deps.gateways.get(last.gatewayId!)).publicAddress, port: last.gatewayPort, connectBy: null };
      if (ctx.readOnly) return undefined;
    }
    const cluster = ctx.poolId ? ((await this.deps.pools.get(ctx.poolId)).gatewayCluster ?? 'default') : 'default';
    const connectBy = new Date(now.getTime() + this.deps.connectByMs);
    const sessionUntil = ctx.maxSessionMinutes ? new Date(now.getTime() + ctx.maxSessionMinutes * 60_000) : null;
    const grant = await this.deps.gateways.issueGrant({ connectionId: conn.id, cluster, clientAddress: conn.clientAddress ?? '0.0.0.0', targetAddress: ws.privateAddress, targetPort: port, connectBy, sessionUntil });
    return { host: grant.host, port: grant.port, connectBy };
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
