import type { Workstation } from '../api/types.ts';

/** What the console can do to one workstation from its row menu. */
export type WorkstationAction = 'edit' | 'maintenance' | 'start' | 'stop' | 'reboot' | 'terminate' | 'delete';

/** What a label or a question reads of the machine. */
type Named = Pick<Workstation, 'name' | 'maintenance'>;

export interface ActionSpec {
  label: (w: Named) => string;
  /** Destroys something: the confirmation asks for the machine's name to be typed. */
  destructive: boolean;
  /** The confirmation's question; null for an action that opens a form instead (edit). */
  question: ((w: Named) => string) | null;
}

export const ACTIONS: Record<WorkstationAction, ActionSpec> = {
  edit: { label: () => 'Edit', destructive: false, question: null },
  maintenance: {
    label: (w) => (w.maintenance ? 'End maintenance' : 'Start maintenance'),
    destructive: false,
    question: (w) => (w.maintenance ? `Give ${w.name} to users again?` : `Put ${w.name} in maintenance? It is not given to new users; whoever holds it keeps it.`),
  },
  start: { label: () => 'Start', destructive: false, question: (w) => `Start ${w.name}?` },
  stop: { label: () => 'Stop', destructive: false, question: (w) => `Stop ${w.name}? Its user is disconnected.` },
  reboot: { label: () => 'Reboot', destructive: false, question: (w) => `Reboot ${w.name}?` },
  terminate: { label: () => 'Terminate', destructive: true, question: (w) => `Terminate ${w.name}? The machine and its disk are destroyed.` },
  delete: { label: () => 'Delete', destructive: true, question: (w) => `Delete ${w.name}? Stagedoor forgets the machine (the host itself is not touched).` },
};

const ORDER: WorkstationAction[] = ['edit', 'maintenance', 'start', 'stop', 'reboot', 'terminate', 'delete'];

/** A listed workstation (a row from a broker older than `availableActions` may lack that field). */
export type ListedWorkstation = Workstation;

/**
 * The actions a row offers: what the provider can do for the machine (`availableActions`, where
 * the API calls forgetting a machine `remove`; from the provider's kind when an older broker does
 * not say: a static host is not power-managed), narrowed to what makes sense in its power state.
 */
export function workstationActions(w: ListedWorkstation): WorkstationAction[] {
  const said: readonly string[] | undefined = w.availableActions;
  const can = new Set<string>((said ?? byKind(w)).map((a) => (a === 'remove' ? 'delete' : a)));
  return ORDER.filter((a) => can.has(a) && fitsState(a, w.powerState));
}

function byKind(w: ListedWorkstation): WorkstationAction[] {
  // An older broker (no availableActions) has no PATCH either: no edit or maintenance from here.
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
    default:
      return true;
  }
}
