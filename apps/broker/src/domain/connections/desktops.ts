import type { Clock } from '../clock.ts';
import type { ConnectionsRepository } from './connections.repository.ts';
import type { ConnectionsService, Requester } from './connections.service.ts';
import type { PoolLaunches } from './ports.ts';

type DesktopState = 'available' | 'starting' | 'running' | 'in-use' | 'stopped' | 'unavailable';
const RANK: Record<DesktopState, number> = { 'in-use': 5, running: 4, starting: 3, stopped: 2, available: 1, unavailable: 0 };

/** "My desktops": the pools the user's policy offers, and the machines they hold in each. */
export class DesktopOffers {
  constructor(private readonly deps: { repo: ConnectionsRepository; connections: ConnectionsService; pools: PoolLaunches; clock: Clock }) {}

  async list(req: Requester & { groupNames: string[] }) {
    const policy = await this.deps.connections.deps.policies.forGroups(req.groupIds);
    if (!policy) {
      const reason = req.groupIds.length
        ? `no policy offers desktops to your groups (${req.groupNames.join(', ')}); ask your administrator`
        : 'you are in no group yet, so no policy offers you a desktop; ask your administrator';
      return { policy: null, reason, desktops: [] };
    }
    const protocols = (await this.deps.connections.protocolsOf(policy)).map((p) => p.protocol);
    const held = await this.deps.repo.activeAssignments(req.actor.userId, null);
    const live = await this.deps.repo.liveConnectionsOf(held.map((a) => a.id));
    const desktops = [];
    for (const offer of policy.pools) {
      const pool = await this.deps.pools.get(offer.poolId);
      const machines = held
        .filter((a) => a.poolId === offer.poolId && a.workstation.powerState !== 'terminated')
        .map((a) => {
          const conn = live.find((c) => c.assignmentId === a.id);
          const w = a.workstation;
          const state: DesktopState =
            conn?.state === 'connected' ? 'in-use' : w.powerState === 'running' ? 'running' : w.powerState === 'pending' || !w.externalId ? 'starting' : 'stopped';
          return { workstationId: w.id, name: w.name, powerState: w.powerState as 'running', connectionId: conn?.id ?? null, state, persistent: a.mode === 'persistent' };
        });
      let state: DesktopState;
      let reason: string | null = null;
      if (machines.length) state = machines.reduce<DesktopState>((best, m) => (RANK[m.state] > RANK[best] ? m.state : best), 'unavailable');
      else if (policy.launchOnLogin || (await this.deps.pools.availability(offer.poolId)).available > 0) state = 'available';
      else {
        state = 'unavailable';
        reason = 'every desktop of this pool is in use; try again later';
      }
      desktops.push({ poolId: pool.id, name: pool.name, description: pool.description, state, reason, desktops: offer.desktops, protocols, machines });
    }
    return { policy: { id: policy.id, name: policy.name, allowRestart: policy.allowRestart }, reason: null, desktops };
  }
}
