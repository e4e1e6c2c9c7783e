// DescribeInstanceStatus: running instances only unless IncludeAllInstances is set.
// Status checks read `initializing` for a configurable while after an instance starts
// running, then `ok`; instances that are not running report `not-applicable`. A check a test failed
// (`control.impairInstance`) reads `impaired` (details `failed`) while the instance runs.

import { invalidParameterCombination } from '../errors.ts';
import { compileFilters } from '../filters.ts';
import type { FieldMap } from '../filters.ts';
import { STATE_CODES } from '../lifecycle.ts';
import { encodeToken, readPageRequest } from '../paging.ts';
import { stateXml } from '../render-instance.ts';
import type { Delays, InstanceRecord } from '../types.ts';
import { el, items, text } from '../xml.ts';
import { zoneId } from '../defaults.ts';
import type { ActionDefinition } from './context.ts';
import { findInstances } from './instance-lookup.ts';

type CheckStatus = 'ok' | 'initializing' | 'not-applicable' | 'impaired';
type Check = 'system' | 'instance';

function checkStatus(instance: InstanceRecord, now: number, delays: Delays, impaired: boolean): CheckStatus {
  if (instance.state !== 'running') return 'not-applicable';
  if (impaired) return 'impaired';
  return now - instance.stateSince >= delays.statusInitializingMs ? 'ok' : 'initializing';
}

const DETAIL: Record<CheckStatus, string> = { ok: 'passed', initializing: 'initializing', impaired: 'failed', 'not-applicable': '' };

function summaryXml(name: string, status: CheckStatus): string {
  const details = status === 'not-applicable' ? '<details/>' : items('details', [DETAIL[status]], (s) => text('name', 'reachability') + text('status', s));
  return el(name, text('status', status), details);
}

export const describeInstanceStatus: ActionDefinition = {
  mutates: false,
  handle({ store, params, now }) {
    const ids = params.list('InstanceId');
    if (ids.length > 0 && params.has('MaxResults')) {
      throw invalidParameterCombination('The parameter instancesSet cannot be used with the parameter maxResults');
    }
    const includeAll = params.bool('IncludeAllInstances') ?? false;
    const check = (i: InstanceRecord, which: Check): CheckStatus => checkStatus(i, now, store.delays, store.impaired.get(i.instanceId)?.[which] ?? false);
    const status = (i: InstanceRecord): CheckStatus => check(i, 'instance');
    const system = (i: InstanceRecord): CheckStatus => check(i, 'system');
    const reach = (s: CheckStatus): string => (s === 'not-applicable' ? s : DETAIL[s]);
    const fields: FieldMap<InstanceRecord> = {
      'availability-zone': (i) => i.availabilityZone,
      'instance-state-name': (i) => i.state,
      'instance-state-code': (i) => String(STATE_CODES[i.state]),
      'instance-status.status': status,
      'instance-status.reachability': (i) => reach(status(i)),
      'system-status.status': system,
      'system-status.reachability': (i) => reach(system(i)),
    };
    const filters = compileFilters(params.filters(), fields, () => []);
    const wanted = (i: InstanceRecord): boolean => (includeAll || i.state === 'running') && filters(i);
    const page = readPageRequest(params, 5, 1000);
    let selected: InstanceRecord[] = [];
    let nextToken: string | undefined;
    if (ids.length > 0) {
      selected = findInstances(store, ids, now).filter(wanted);
    } else {
      for (const instance of store.scan(now, page.after ?? 0)) {
        if (!wanted(instance)) continue;
        if (page.maxResults !== undefined && selected.length === page.maxResults) {
          nextToken = encodeToken(selected[selected.length - 1]?.seq ?? 0);
          break;
        }
        selected.push(instance);
      }
    }
    const body = items('instanceStatusSet', selected, (i) => {
      const s = status(i);
      const sys = system(i);
      return (
        text('instanceId', i.instanceId) +
        text('availabilityZone', i.availabilityZone) +
        text('availabilityZoneId', zoneId(i.availabilityZone)) +
        '<eventsSet/>' +
        stateXml('instanceState', i.state) +
        summaryXml('systemStatus', sys) +
        summaryXml('instanceStatus', s) +
        el('attachedEbsStatus', text('status', sys === 'impaired' ? 'ok' : sys), '<details/>')
      );
    });
    return body + text('nextToken', nextToken);
  },
};
