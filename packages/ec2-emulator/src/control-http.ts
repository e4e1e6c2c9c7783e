// The control API as JSON over HTTP, under /_emulator/ on the emulator's own port, so
// tests in another process (or curl) can drive time, faults, capacity and seeding.

import type { Ec2EmulatorControl } from './control.ts';
import type { CapacityLimit, Delays, FaultSpec, ImageSeed, LaunchTemplateSeed, SecurityGroupSeed, SubnetSeed } from './types.ts';

export const CONTROL_PREFIX = '/_emulator';

export interface ControlResponse {
  status: number;
  body: unknown;
}

type Handler = (body: unknown, rest: string[]) => unknown;

/** Accepts `[…]`, `{ items: […] }`, `{ <key>: […] }` or a single object. */
function listOf<T>(body: unknown, key: string): T[] {
  if (Array.isArray(body)) return body as T[];
  if (body && typeof body === 'object') {
    const record = body as Record<string, unknown>;
    const list = record[key] ?? record.items;
    if (Array.isArray(list)) return list as T[];
    return [body as T];
  }
  throw new Error(`expected a JSON object or array of ${key}`);
}

function object(body: unknown): Record<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('expected a JSON object');
  return body as Record<string, unknown>;
}

function routes(control: Ec2EmulatorControl): Record<string, Handler> {
  return {
    'GET health': () => ({ ok: true, now: new Date(control.now()).toISOString() }),
    'GET state': () => ({
      now: new Date(control.now()).toISOString(),
      delays: control.getDelays(),
      capacity: control.getCapacity(),
      faults: control.listFaults(),
      refusedAccessKeys: control.refusedAccessKeys(),
      defaultNetwork: control.defaultNetwork(),
      instanceCount: control.instances().length,
    }),
    'GET instances': () => control.instances(),
    'PUT prices': (body) => {
      const { regionCode, instanceType, usdPerHour } = (body ?? {}) as { regionCode?: unknown; instanceType?: unknown; usdPerHour?: unknown };
      if (typeof regionCode !== 'string' || typeof instanceType !== 'string' || typeof usdPerHour !== 'number') throw new Error('send { "regionCode": "us-east-1", "instanceType": "g5.xlarge", "usdPerHour": 1.006 }');
      control.setOnDemandPrice(regionCode, instanceType, usdPerHour);
      return { ok: true };
    },
    'POST impaired': (body) => {
      const { instanceId, system, instance } = object(body) as { instanceId?: string; system?: boolean; instance?: boolean };
      if (typeof instanceId !== 'string') throw new Error('instanceId must be a string');
      control.impairInstance(instanceId, { system, instance });
      return { instanceId, system: system ?? false, instance: instance ?? false };
    },
    'GET calls': () => control.callCounts(),
    'DELETE calls': () => {
      control.resetCallCounts();
      return control.callCounts();
    },
    'GET delays': () => control.getDelays(),
    'PUT delays': (body) => control.setDelays(object(body) as Partial<Delays>),
    'POST delays': (body) => control.setDelays(object(body) as Partial<Delays>),
    'GET time': () => ({ now: control.now(), iso: new Date(control.now()).toISOString() }),
    'POST time/advance': (body) => {
      const { ms, seconds, minutes } = object(body) as { ms?: number; seconds?: number; minutes?: number };
      const total = (ms ?? 0) + (seconds ?? 0) * 1000 + (minutes ?? 0) * 60_000;
      const now = control.advanceTime(total);
      return { now, iso: new Date(now).toISOString() };
    },
    'GET faults': () => control.listFaults(),
    'POST faults': (body) => {
      for (const fault of listOf<FaultSpec>(body, 'faults')) control.injectFault(fault);
      return control.listFaults();
    },
    'DELETE faults': () => {
      control.clearFaults();
      return control.listFaults();
    },
    'PUT faults/seed': (body) => {
      const { seed } = object(body) as { seed?: number };
      if (!Number.isInteger(seed)) throw new Error('seed must be an integer');
      control.setFaultSeed(seed ?? 0);
      return { seed };
    },
    'GET capacity': () => control.getCapacity(),
    'PUT capacity': (body) => {
      control.setCapacity(listOf<CapacityLimit>(body, 'limits'));
      return control.getCapacity();
    },
    'DELETE capacity': () => {
      control.setCapacity([]);
      return control.getCapacity();
    },
    'POST images': (body) => control.seedImages(listOf<ImageSeed>(body, 'images')),
    'POST subnets': (body) => control.seedSubnets(listOf<SubnetSeed>(body, 'subnets')),
    'POST security-groups': (body) => control.seedSecurityGroups(listOf<SecurityGroupSeed>(body, 'securityGroups')),
    'POST launch-templates': (body) => control.seedLaunchTemplates(listOf<LaunchTemplateSeed>(body, 'launchTemplates')),
    'GET network': () => control.defaultNetwork(),
    'GET refused-keys': () => control.refusedAccessKeys(),
    'POST refused-keys': (body) => {
      const { accessKeyId } = object(body) as { accessKeyId?: string };
      if (!accessKeyId) throw new Error('accessKeyId is required');
      control.refuseAccessKey(accessKeyId);
      return control.refusedAccessKeys();
    },
    'DELETE refused-keys/*': (_body, rest) => {
      control.allowAccessKey(decodeURIComponent(rest.join('/')));
      return control.refusedAccessKeys();
    },
    'POST reset': () => {
      control.reset();
      return { ok: true };
    },
    'POST flush': async () => {
      await control.flush();
      return { ok: true };
    },
  };
}

export function createControlHandler(control: Ec2EmulatorControl) {
  const table = routes(control);
  return async (method: string, path: string, rawBody: string): Promise<ControlResponse> => {
    const segments = path.slice(CONTROL_PREFIX.length).split('/').filter(Boolean);
    const exact = table[`${method} ${segments.join('/')}`];
    const wildcard = table[`${method} ${segments[0] ?? ''}/*`];
    const handler = exact ?? (segments.length > 1 ? wildcard : undefined);
    if (!handler) return { status: 404, body: { error: `no control route ${method} ${path}` } };
    let body: unknown;
    try {
      body = rawBody.trim() === '' ? {} : JSON.parse(rawBody);
    } catch {
      return { status: 400, body: { error: 'request body is not valid JSON' } };
    }
    try {
      return { status: 200, body: (await handler(body, segments.slice(1))) ?? { ok: true } };
    } catch (error) {
      return { status: 400, body: { error: (error as Error).message } };
    }
  };
}
