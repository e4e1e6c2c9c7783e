import type { WorkstationAction } from '@stagedoor/contract';

/** What `availableActions` needs to know of a machine. */
export interface ActionSubject {
  powerState: string;
  externalId: string | null;
  /** The assignment marker: a machine someone holds is not terminated or removed under them. */
  assignmentId: string | null;
}

/** EC2's power actions by state: what StartInstances, StopInstances… accept (others fail IncorrectInstanceState). */
const EC2_POWER: Record<string, WorkstationAction[]> = {
  pending: ['terminate'],
  running: ['stop', 'reboot', 'terminate'],
  stopping: ['terminate'],
  stopped: ['start', 'terminate'],
  terminated: [],
  unknown: [],
};

/**
 * What an admin can do to this machine now (pure). A static host has no power control (Stagedoor
 * did not start it and cannot stop it) but is edited and removed here; a cloud machine's power
 * actions follow its last known state, and its name, address and tags belong to the cloud.
 * A hint for the console: the provider stays the judge of a power call (the state may have moved).
 */
export function availableActions(kind: string, ws: ActionSubject): WorkstationAction[] {
  const held = ws.assignmentId !== null;
  if (kind === 'static') return held ? ['edit', 'maintenance'] : ['edit', 'remove', 'maintenance'];
  if (ws.powerState === 'terminated') return held ? [] : ['remove'];
  // Still being launched: no instance id to act on yet.
  if (!ws.externalId) return ['maintenance'];
  const power = (EC2_POWER[ws.powerState] ?? []).filter((a) => !(held && a === 'terminate'));
  return [...power, 'maintenance'];
}
