import type { DbOrTx } from '../../db/database.ts';
import type { RoutedPorts } from '../../db/schema/gateways.ts';
import type { WorkstationRow } from '../workstations/workstations.repository.ts';

/**
 * What the connect flow needs from other domains, as narrow interfaces: the pools service launches
 * and reconciles, the gateways service issues grants. (`services.ts` passes the real services.)
 */
export interface PoolLaunches {
  get(id: string): Promise<{ id: string; name: string; description: string | null; gatewayCluster: string | null }>;
  reservePendingLaunch(poolId: string, tx: DbOrTx): Promise<{ ok: true; workstation: WorkstationRow } | { ok: false; reason: string }>;
  executeLaunch(workstationId: string): Promise<void>;
  poke(poolId: string): void;
  availability(poolId: string): Promise<{ available: number }>;
}

export interface GrantIssuer {
  issueGrant(
    input: {
      connectionId: string;
      cluster: string;
      clientAddress: string;
      targetAddress: string;
      targetPort: number;
      connectBy: Date;
      sessionUntil?: Date | null;
      mode?: 'portForward' | 'routed';
      reconnectWindowSeconds?: number;
      /** Only gateways with an SNI domain (routed dcv names `<token>.<domain>`). */
      requireSniDomain?: boolean;
    },
    tx?: DbOrTx,
  ): Promise<{ grantId: string; gatewayId: string; host: string; port: number | null }>;
  /** A routed grant's token (opened from its sealed copy), for its owner's instructions only. */
  grantToken(grant: { id: string; mode: string; tokenSealed: string | null }): string | null;
  revokeGrant(grantId: string, reason: string): Promise<void>;
  /** Grants revoked in the database by a committed transaction: tell the gateways now (every node). */
  announceRevoked(grants: readonly { id: string; gatewayCluster: string }[], reason: string): void;
  get(gatewayId: string): Promise<{ publicAddress: string; routedPorts: RoutedPorts; sniDomain: string | null; sshHostKey: string | null; tlsCertificateSha256: string | null }>;
}
