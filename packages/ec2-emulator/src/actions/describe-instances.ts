// DescribeInstances: by id, or by filters with MaxResults/NextToken paging. Paging walks
// instances in launch order from the token's position, so a full pass over N instances
// is O(N) however small the pages are.

import { invalidParameterCombination } from '../errors.ts';
import { compileFilters } from '../filters.ts';
import { encodeToken, readPageRequest } from '../paging.ts';
import { reservationFields } from '../render-instance.ts';
import type { InstanceRecord } from '../types.ts';
import { text } from '../xml.ts';
import type { ActionDefinition } from './context.ts';
import { findInstances, instanceFilterFields } from './instance-lookup.ts';

export const describeInstances: ActionDefinition = {
  mutates: false,
  handle({ store, params, now }) {
    const ids = params.list('InstanceId');
    if (ids.length > 0 && params.has('MaxResults')) {
      throw invalidParameterCombination('The parameter instancesSet cannot be used with the parameter maxResults');
    }
    const matches = compileFilters(params.filters(), instanceFilterFields(store.accountId), (i: InstanceRecord) => i.tags);
    const page = readPageRequest(params, 5, 1000);
    let selected: InstanceRecord[] = [];
    let nextToken: string | undefined;
    if (ids.length > 0) {
      selected = findInstances(store, ids, now).filter(matches);
    } else {
      for (const instance of store.scan(now, page.after ?? 0)) {
        if (!matches(instance)) continue;
        if (page.maxResults !== undefined && selected.length === page.maxResults) {
          // Only hand out a token when another match really exists, so the last page is never empty.
          nextToken = encodeToken(selected[selected.length - 1]?.seq ?? 0);
          break;
        }
        selected.push(instance);
      }
    }
    const byReservation = new Map<string, InstanceRecord[]>();
    for (const instance of selected) {
      const group = byReservation.get(instance.reservationId);
      if (group) group.push(instance);
      else byReservation.set(instance.reservationId, [instance]);
    }
    let reservations = '<reservationSet>';
    for (const [reservationId, instances] of byReservation) {
      const ownerId = store.reservations.get(reservationId)?.ownerId ?? store.accountId;
      reservations += `<item>${reservationFields(reservationId, ownerId, instances, store.region)}</item>`;
    }
    reservations += '</reservationSet>';
    return reservations + text('nextToken', nextToken);
  },
};
