import type { Workstation } from '../api/types.ts';

/** What the console can do to one workstation from its row menu. */
export type WorkstationAction = 'start' | 'stop' | 'reboot' | 'terminate' | 'delete';

export interface ActionSpec {
  label: string;
  /** Destroys something: the confirmation asks for the machine's name to be typed. */
  destructive: boolean;
  question: (name: string) => string;
}

export const ACTIONS: Record<WorkstationAction, ActionSpec> = {
  start: { label: 'Start', destructive: false, question: (n) => `Start ${n}?` },
  stop: { label: 'Stop', destructive: false, question: (n) => `Stop ${n}? Its user is disconnected.` },
  reboot: { label: 'Reboot', destructive: false, question: (n) => `Reboot ${n}?` },
  terminate: { label: 'Terminate', destructive: true, question: (n) => `Terminate ${n}? The machine and its disk are destroyed.` },
  delete: { label: 'Delete', destructive: true, question: (n) => `Delete ${n}? Stagedoor forgets the machine (the host itself is not touched).` },
};

const ORDER: WorkstationAction[] = ['start', 'stop', 'reboot', 'terminate', 'delete'];

/**
 * A listed workstation, with what the API may add: `availableActions` (what its provider can do for
 * it) and the provider it belongs to.
 */
export type ListedWorkstation = Workstation & { availableActions?: string[] };

/**
 * The actions a row offers: what the provider can do for the machine (`availableActions` when the
 * API says so, otherwise from the provider's kind: a static host is not power-managed), narrowed to
 * what makes sense in its power state.
 */
export function workstationActions(w: ListedWorkstation): WorkstationAction[] {
  const can = new Set<string>(w.availableActions ?? byKind(w));
  return ORDER.filter((a) => can.has(a) && fitsState(a, w.powerState));
}

function byKind(w: ListedWorkstation): WorkstationAction[] {
  // A static host is a machine Stagedoor only knows: it cannot start, stop, reboot or destroy it.
  if (w.provider?.kind === 'static') return ['delete'];
  // A cloud machine is terminated first; its record can then be forgotten.
  return ['start', 'stop', 'reboot', 'terminate', ...(w.powerState === 'terminated' ? (['delete'] as const) : [])];
}

function fitsState(a: WorkstationAction, state: Workstation['powerState']): boolean {
  switch (a) {
    case 'start':
      return state === 'stopped';
    case 'stop':
    case 'reboot':
      return state === 'running';
    case 'terminate':
      return state !== 'terminated';
    case 'delete':
      return true;
  }
}
