import { describe, expect, it } from 'vitest';
import { workstationActions, type ListedWorkstation } from '../src/pages/workstation-actions.ts';

/** Which operations a workstation's row menu offers: the provider's word when the API gives it, else its kind. */
const ws = (over: Partial<ListedWorkstation>): ListedWorkstation => ({ powerState: 'running', provider: { id: 'p', name: 'p', kind: 'aws-ec2' }, ...over }) as ListedWorkstation;

describe('workstationActions', () => {
  it.each([
    ['EC2, running', ws({}), ['stop', 'reboot', 'terminate']],
    ['EC2, stopped', ws({ powerState: 'stopped' }), ['start', 'terminate']],
    ['EC2, pending', ws({ powerState: 'pending' }), ['terminate']],
    ['EC2, terminated: only forgetting it', ws({ powerState: 'terminated' }), ['delete']],
    ['static host, running: no power actions', ws({ provider: { id: 'p', name: 'lab', kind: 'static' } }), ['delete']],
    ['static host, unknown state', ws({ powerState: 'unknown', provider: { id: 'p', name: 'lab', kind: 'static' } }), ['delete']],
    ['no provider in the answer: as a cloud machine', ws({ provider: undefined }), ['stop', 'reboot', 'terminate']],
  ] as const)('%s', (_, w, expected) => {
    expect(workstationActions(w)).toEqual(expected);
  });

  it('availableActions from the API wins over the provider kind, still narrowed by the power state', () => {
    expect(workstationActions(ws({ availableActions: ['reboot', 'remove', 'maintenance'] }))).toEqual(['maintenance', 'reboot', 'delete']);
    // The API calls forgetting a machine `remove`; the menu calls it Delete.
    expect(workstationActions(ws({ provider: { id: 'p', name: 'lab', kind: 'static' }, availableActions: ['edit', 'remove', 'maintenance'] }))).toEqual(['edit', 'maintenance', 'delete']);
    expect(workstationActions(ws({ powerState: 'stopped', availableActions: ['start', 'stop', 'reboot'] }))).toEqual(['start']);
    expect(workstationActions(ws({ provider: { id: 'p', name: 'lab', kind: 'static' }, availableActions: [] }))).toEqual([]);
  });
});
