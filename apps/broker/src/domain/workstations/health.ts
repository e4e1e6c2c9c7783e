import type { HealthSource } from '../../db/schema/providers.ts';
import type { StatusChecks } from '../../providers/cloud/cloud-provider.ts';

/**
 * Workstation health (issue 16 point 2, docs/health.md). Pure: facts and a clock in, a verdict out.
 *
 * - Not running: `unknown` (nothing to check; a stopped machine is not broken).
 * - A failed EC2 status check (`impaired`, system or instance): `unhealthy`, from the status checks —
 *   whatever the agent says, the host or the OS is failing.
 * - An agent has reported from the machine: `healthy` while it keeps reporting, `unhealthy` once it
 *   has been silent for AGENT_SILENT_MS since it last reported or the machine last started, whichever
 *   is later (a machine booting is not silent yet). The agent is the closer witness: it sees the OS.
 * - No agent: the status checks; `ok` on both is `healthy`, anything else (initializing,
 *   insufficient data, no answer) leaves `unknown`.
 */

/** Three missed agent heartbeats (every 60 s, power.wiring.ts): a reboot's gap passes, a hung machine does not. */
export const AGENT_SILENT_MS = 3 * 60_000;

export interface HealthFacts {
  powerState: string;
  /** When the power state last changed: for a running machine, when it started running. */
  powerStateChangedAt: Date;
  agentLastSeenAt: Date | null;
}

export interface HealthVerdict {
  health: 'unknown' | 'healthy' | 'unhealthy';
  source: HealthSource | null;
}

export function decideHealth(f: HealthFacts, checks: StatusChecks | undefined, now: Date, agentSilentMs = AGENT_SILENT_MS): HealthVerdict {
  if (f.powerState !== 'running') return { health: 'unknown', source: null };
  if (checks && (checks.system === 'impaired' || checks.instance === 'impaired')) return { health: 'unhealthy', source: 'status-checks' };
  if (f.agentLastSeenAt) {
    const since = Math.max(f.agentLastSeenAt.getTime(), f.powerStateChangedAt.getTime());
    return { health: now.getTime() - since > agentSilentMs ? 'unhealthy' : 'healthy', source: 'agent' };
  }
  if (!checks) return { health: 'unknown', source: null };
  return { health: checks.system === 'ok' && checks.instance === 'ok' ? 'healthy' : 'unknown', source: 'status-checks' };
}
