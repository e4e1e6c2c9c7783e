// The Query API's request pipeline, independent of HTTP: authenticate, find the action,
// count the call, apply injected faults, run the handler, and render EC2's XML.

import { ACTIONS } from './actions/index.ts';
import { authenticate } from './auth.ts';
import { EmulatorClock } from './clock.ts';
import { seedDefaultAccount } from './defaults.ts';
import { Ec2Error } from './errors.ts';
import { FaultInjector } from './faults.ts';
import { requestId as newRequestId } from './ids.ts';
import { PriceCatalogue } from './pricing/catalogue.ts';
import { PricingError, executePricing } from './pricing/get-products.ts';
import { QueryParams } from './query.ts';
import { Ec2Store } from './store.ts';
import type { CallCounters, CapacityLimit, Delays } from './types.ts';
import { errorDocument, responseDocument } from './xml.ts';

export interface CoreOptions {
  region: string;
  accountId: string;
  delays: Delays;
  clock?: () => number;
  faultSeed?: number;
}

export interface QueryRequest {
  authorization?: string;
  params: QueryParams;
}

export interface QueryResponse {
  status: number;
  body: string;
  requestId: string;
}

export interface JsonResponse {
  status: number;
  body: string;
  requestId: string;
  errorType?: string;
}

/** Codes of the Query API's refusals, in the JSON protocol's words. */
const JSON_ERROR_OF: Record<string, { type: string; status: number }> = {
  MissingParameter: { type: 'MissingAuthenticationTokenException', status: 403 },
  IncompleteSignature: { type: 'IncompleteSignatureException', status: 400 },
  AuthFailure: { type: 'UnrecognizedClientException', status: 400 },
  RequestLimitExceeded: { type: 'ThrottlingException', status: 400 },
  InternalError: { type: 'InternalErrorException', status: 500 },
};

function emptyCounters(): CallCounters {
  return { total: 0, byAction: {}, errorsByCode: {} };
}

export class EmulatorCore {
  readonly store: Ec2Store;
  readonly clock: EmulatorClock;
  readonly faults: FaultInjector;
  capacityLimits: CapacityLimit[] = [];
  readonly refusedKeys = new Set<string>();
  counters: CallCounters = emptyCounters();
  /** The AWS Price List the emulator serves (JSON protocol, same port). */
  readonly pricing = new PriceCatalogue();
  private readonly listeners: Array<() => void> = [];

  constructor(readonly options: CoreOptions) {
    this.store = new Ec2Store({ region: options.region, accountId: options.accountId, delays: { ...options.delays } });
    this.clock = new EmulatorClock(options.clock);
    this.faults = new FaultInjector(options.faultSeed);
  }

  /** Called after every successful state change, e.g. to persist. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  notifyChange(): void {
    for (const listener of this.listeners) listener();
  }

  /** Back to a brand-new account: default network and AMIs, no faults, limits or counters. */
  reset(): void {
    this.store.clear();
    Object.assign(this.store.settings.delays, this.options.delays);
    seedDefaultAccount(this.store);
    this.capacityLimits = [];
    this.refusedKeys.clear();
    this.faults.clear();
    this.counters = emptyCounters();
    this.notifyChange();
  }

  resetCounters(): void {
    this.counters = emptyCounters();
  }

  execute(request: QueryRequest): QueryResponse {
    const requestId = newRequestId();
    const action = request.params.get('Action');
    this.counters.total++;
    const counted = action ?? '(missing)';
    this.counters.byAction[counted] = (this.counters.byAction[counted] ?? 0) + 1;
    try {
      authenticate(request.authorization, request.params, this.refusedKeys);
      if (!action) throw new Ec2Error('MissingAction', 'The request is missing an action or a required parameter.');
      const definition = ACTIONS[action];
      if (!definition) throw new Ec2Error('InvalidAction', `The action ${action} is not valid for this web service.`);
      const fault = this.faults.next(action);
      if (fault) throw fault;
      if (request.params.bool('DryRun')) {
        throw new Ec2Error('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
      }
      const body = definition.handle({
        store: this.store,
        params: request.params,
        now: this.clock.now(),
        capacityLimits: this.capacityLimits,
      });
      if (definition.mutates) this.notifyChange();
      return { status: 200, body: responseDocument(action, requestId, body), requestId };
    } catch (error) {
      const failure =
        error instanceof Ec2Error
          ? error
          : new Ec2Error('InternalError', `An internal error has occurred: ${(error as Error).message ?? String(error)}`, 500);
      this.counters.errorsByCode[failure.code] = (this.counters.errorsByCode[failure.code] ?? 0) + 1;
      return { status: failure.status, body: errorDocument(failure.code, failure.message, requestId), requestId };
    }
  }

  /**
   * A JSON 1.1 request (`X-Amz-Target`), today only the Price List API: the same signature check,
   * call counters and injected faults as the Query API, with JSON errors.
   */
  executeJson(target: string, authorization: string | undefined, body: string): JsonResponse {
    const requestId = newRequestId();
    const action = target.slice(target.indexOf('.') + 1);
    this.counters.total++;
    this.counters.byAction[action] = (this.counters.byAction[action] ?? 0) + 1;
    try {
      authenticate(authorization, new QueryParams(new Map()), this.refusedKeys);
      const fault = this.faults.next(action);
      if (fault) throw fault;
      const answer = executePricing(this.pricing, action, body);
      return { status: 200, body: JSON.stringify(answer), requestId };
    } catch (error) {
      let failure: PricingError;
      if (error instanceof PricingError) failure = error;
      else if (error instanceof Ec2Error) {
        const mapped = JSON_ERROR_OF[error.code];
        failure = new PricingError(mapped?.type ?? error.code, error.message, mapped?.status ?? error.status);
      } else failure = new PricingError('InternalErrorException', `An internal error has occurred: ${(error as Error).message ?? String(error)}`, 500);
      this.counters.errorsByCode[failure.type] = (this.counters.errorsByCode[failure.type] ?? 0) + 1;
      return { status: failure.status, body: JSON.stringify({ __type: failure.type, message: failure.message }), requestId, errorType: failure.type };
    }
  }
}
