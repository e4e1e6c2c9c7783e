import { describe, expect, it } from 'vitest';
import { availableActions } from '../../src/domain/workstations/actions.ts';

const m = (over: { powerState?: string; externalId?: string | null; assignmentId?: string | null } = {}) => ({ powerState: 'running', externalId: 'i-1', assignmentId: null, ...over });

describe('availableActions: only what the provider can do to the machine now', () => {
  it.each([
    ['static, free', 'static', m(), ['edit', 'remove', 'maintenance']],
    ['static, held by a user', 'static', m({ assignmentId: 'a' }), ['edit', 'maintenance']],
    ['ec2 running', 'aws-ec2', m(), ['stop', 'reboot', 'terminate', 'maintenance']],
    ['ec2 running, held', 'aws-ec2', m({ assignmentId: 'a' }), ['stop', 'reboot', 'maintenance']],
    ['ec2 stopped', 'aws-ec2', m({ powerState: 'stopped' }), ['start', 'terminate', 'maintenance']],
    ['ec2 pending', 'aws-ec2', m({ powerState: 'pending' }), ['terminate', 'maintenance']],
    ['ec2 stopping', 'aws-ec2', m({ powerState: 'stopping' }), ['terminate', 'maintenance']],
    ['ec2 still launching (no instance id)', 'aws-ec2', m({ powerState: 'pending', externalId: null }), ['maintenance']],
    ['ec2 terminated', 'aws-ec2', m({ powerState: 'terminated' }), ['remove']],
    ['ec2 unknown to the cloud', 'aws-ec2', m({ powerState: 'unknown' }), ['maintenance']],
  ] as const)('%s', (_name, kind, ws, want) => {
    expect(availableActions(kind, ws)).toEqual(want);
  });
});
