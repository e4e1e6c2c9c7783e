import type { Logger } from 'pino';
import type { Db, DbOrTx } from '../../db/database.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import { systemActor, type Actor } from '../identity/actor.ts';
import type { AccessRepository, Unentitled } from './access.repository.ts';
import type { ConnectionsRepository, RevokedGrant } from './connections.repository.ts';

const BATCH = 200;

/** What a review changed, for the gateways and the pools once its transaction commits. */
export interface AccessEnded {
  grants: RevokedGrant[];
  poolIds: string[];
}

/** What may end a user's access; the audit row names it. */
export type AccessChange = 'user-disabled' | 'user-deleted' | 'groups-changed' | 'policy-changed' | 'review';

/**
 * Keeps "a grant only while its user may use the desktop": when a user is disabled or deleted, leaves
 * a group, or a policy changes, the assignments they may no longer hold end — a floating one is
 * released (its connections close, its grants are revoked, the machine goes back to the pool); a
 * persistent one stays theirs but its connections close and its grants are revoked. Callers run it
 * inside the transaction that made the change, so the change and its consequences commit together,
 * then call `finish` after the commit; a job runs it over everyone as a safety net.
 */
export class AccessReview {
  constructor(
    private readonly deps: {
      db: Db;
      access: AccessRepository;
      connections: ConnectionsRepository;
      audit: AuditService;
      clock: Clock;
      log: Logger;
      gateways: { announceRevoked(grants: readonly { id: string; gatewayCluster: string }[], reason: string): void };
      pools: { poke(poolId: string): void };
    },
  ) {}

  /**
   * In the caller's transaction: end what these users (null: everyone) may no longer hold.
   * `everything`: the users are being deleted, so every assignment of theirs is released.
   */
  async enforce(actor: Actor, change: AccessChange, userIds: readonly string[] | null, tx: DbOrTx, opts: { everything?: boolean } = {}): Promise<AccessEnded> {
    const ended: AccessEnded = { grants: [], poolIds: [] };
    if (userIds !== null && userIds.length === 0) return ended;
    const now = this.deps.clock.now();
    for (;;) {
      const rows = await this.deps.access.unentitled(userIds, { everything: opts.everything, limit: BATCH }, tx);
      for (const row of rows) await this.#end(actor, change, row, !!opts.everything, now, tx, ended);
      // Released rows leave the result, and persistent ones with nothing live any more do too.
      if (rows.length < BATCH) return ended;
    }
  }

  /** After the commit: tell the gateways, refill the pools. */
  finish(ended: AccessEnded, change: AccessChange): void {
    this.deps.gateways.announceRevoked(ended.grants, `access ended: ${change}`);
    for (const poolId of new Set(ended.poolIds)) this.deps.pools.poke(poolId);
  }

  /** The safety net (a job): everyone, in its own transaction. */
  async reviewAll(): Promise<{ grantsRevoked: number; poolsPoked: number }> {
    const ended = await this.deps.db.transaction((tx) => this.enforce(systemActor, 'review', null, tx));
    this.finish(ended, 'review');
    return { grantsRevoked: ended.grants.length, poolsPoked: new Set(ended.poolIds).size };
  }

  async #end(actor: Actor, change: AccessChange, row: Unentitled, everything: boolean, now: Date, tx: DbOrTx, ended: AccessEnded): Promise<void> {
    const why = row.userDisabled && change !== 'user-deleted' ? 'user-disabled' : change;
    if (everything || row.mode === 'floating') {
      const released = await this.deps.connections.releaseAssignment(row.assignmentId, 'admin', now, tx);
      if (!released) return;
      ended.grants.push(...released.grants);
      if (released.poolId) ended.poolIds.push(released.poolId);
      await this.deps.audit.record(
        actor,
        { action: 'assignment.release', outcome: 'success', targetType: 'assignment', targetId: row.assignmentId, reason: `access ended: ${why}`, details: { user: row.userId, workstation: released.workstationId, connectionsClosed: released.connectionIds.length, grantsRevoked: released.grants.map((g) => g.id) } },
        tx,
      );
      return;
    }
    const closed = await this.deps.connections.closeLiveOn(row.assignmentId, `access ended: ${why}`, now, tx);
    ended.grants.push(...closed.grants);
    await this.deps.audit.record(
      actor,
      { action: 'connection.access_ended', outcome: 'success', targetType: 'assignment', targetId: row.assignmentId, reason: why, details: { user: row.userId, connectionsClosed: closed.connectionIds, grantsRevoked: closed.grants.map((g) => g.id), kept: 'persistent assignment' } },
      tx,
    );
  }
}
