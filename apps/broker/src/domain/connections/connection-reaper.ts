import type { Logger } from 'pino';
import type { Db } from '../../db/database.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import { systemActor } from '../identity/actor.ts';
import type { AccessRepository } from './access.repository.ts';
import type { ConnectionsRepository, RevokedGrant } from './connections.repository.ts';

const BATCH = 200;
/** Past the connect-by window, before a connection counts as stale: a client polling late is not a ghost. */
const MARGIN_MS = 60_000;

/**
 * Closes live connections that nothing will ever move on (`AccessRepository.stale`), so "live
 * sessions" and "why is it still running?" show only what is real. Each close revokes the
 * connection's grants in the same statement and is audited. Run by the `connection-reaper` job.
 */
export class ConnectionReaper {
  constructor(
    private readonly deps: {
      db: Db;
      access: AccessRepository;
      connections: ConnectionsRepository;
      audit: AuditService;
      clock: Clock;
      log: Logger;
      gateways: { announceRevoked(grants: readonly RevokedGrant[], reason: string): void };
      connectByMs: number;
    },
  ) {}

  async reap(): Promise<{ closed: number }> {
    const now = this.deps.clock.now();
    let closed = 0;
    for (;;) {
      const stale = await this.deps.access.stale(now, this.deps.connectByMs + MARGIN_MS, BATCH);
      const grants: RevokedGrant[] = [];
      const before = closed;
      await this.deps.db.transaction(async (tx) => {
        for (const s of stale) {
          const ended = await this.deps.connections.closeWithGrants(s.connectionId, 'closed', `reaped: ${s.reason}`, now, tx);
          if (!ended) continue;
          closed++;
          grants.push(...ended.grants);
          await this.deps.audit.record(systemActor, { action: 'connection.reap', outcome: 'success', targetType: 'connection', targetId: s.connectionId, reason: s.reason, details: { user: ended.userId, workstation: ended.workstationId, state: 'closed', grantsRevoked: ended.grants.map((g) => g.id) } }, tx);
        }
      });
      this.deps.gateways.announceRevoked(grants, 'connection reaped');
      if (stale.length < BATCH || closed === before) break;
    }
    if (closed) this.deps.log.info({ closed }, 'stale connections closed');
    return { closed };
  }
}
