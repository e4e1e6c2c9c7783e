import { describe, expect, it } from 'vitest';
import { IpPool, parseCidr } from '../src/cidr.ts';
import { zoneId } from '../src/defaults.ts';
import { FaultInjector } from '../src/faults.ts';
import { compileFilters } from '../src/filters.ts';
import { isWellFormedId } from '../src/ids.ts';
import { DEFAULT_DELAYS, pendingSteps } from '../src/lifecycle.ts';
import { decodeToken, encodeToken } from '../src/paging.ts';
import { QueryParams } from '../src/query.ts';
import type { Delays, InstanceStateName } from '../src/types.ts';

const delays: Delays = { ...DEFAULT_DELAYS, pendingMs: 10, stoppingMs: 20, shuttingDownMs: 30 };

describe('pendingSteps', () => {
  const cases: Array<[InstanceStateName, number, string[]]> = [
    ['pending', 9, []],
    ['pending', 10, ['running@10']],
    ['stopping', 100, ['stopped@20']],
    ['shutting-down', 30, ['terminated@30']],
    ['running', 1_000, []],
    ['stopped', 1_000, []],
  ];
  it.each(cases)('%s after %i ms', (state, now, expected) => {
    expect(pendingSteps(state, 0, now, delays).map((s) => `${s.to}@${s.at}`)).toEqual(expected);
  });
});

describe('filters', () => {
  const resources = [
    { id: 'a', type: 't3.micro', tags: [{ key: 'Name', value: 'edit-01' }] },
    { id: 'b', type: 'g5.xlarge', tags: [{ key: 'Name', value: 'color?' }] },
  ];
  const fields = { 'instance-type': (r: (typeof resources)[number]) => r.type };
  const pick = (filters: Array<{ name: string; values: string[] }>) =>
    resources.filter(compileFilters(filters, fields, (r) => r.tags)).map((r) => r.id);

  it('ORs values, ANDs filters and understands * and ? wildcards', () => {
    expect(pick([{ name: 'instance-type', values: ['t3.*', 'm5.large'] }])).toEqual(['a']);
    expect(pick([{ name: 'tag:Name', values: ['edit-0?'] }])).toEqual(['a']);
    expect(pick([{ name: 'tag:Name', values: ['color?'] }, { name: 'instance-type', values: ['g5.xlarge'] }])).toEqual(['b']);
    expect(pick([{ name: 'tag-key', values: ['Na*'] }])).toEqual(['a', 'b']);
    expect(pick([{ name: 'tag-value', values: ['*.*'] }])).toEqual([]);
  });

  it('refuses unknown filter names', () => {
    expect(() => pick([{ name: 'flavour', values: ['x'] }])).toThrow("The filter 'flavour' is invalid");
  });
});

describe('IpPool', () => {
  it('skips the four reserved head addresses and the broadcast address', () => {
    const pool = new IpPool(parseCidr('10.0.0.0/28') ?? { base: 0, prefix: 0, size: 0 });
    expect(pool.capacity).toBe(11);
    const ips = Array.from({ length: 11 }, () => pool.allocate());
    expect(ips[0]).toBe('10.0.0.4');
    expect(ips[10]).toBe('10.0.0.14');
    expect(pool.allocate()).toBeUndefined();
    pool.release('10.0.0.7');
    expect(pool.allocate()).toBe('10.0.0.7');
  });

  it('rejects CIDRs that are not aligned', () => {
    expect(parseCidr('10.0.0.1/24')).toBeUndefined();
    expect(parseCidr('10.0.0.0/33')).toBeUndefined();
  });
});

describe('FaultInjector', () => {
  it('uses count rules up first, per action or for every action', () => {
    const faults = new FaultInjector();
    faults.add({ action: 'RunInstances', code: 'RequestLimitExceeded', count: 2 });
    faults.add({ code: 'Unavailable' });
    expect(faults.next('DescribeInstances')?.code).toBe('Unavailable');
    expect(faults.next('RunInstances')?.status).toBe(503);
    expect(faults.next('RunInstances')?.code).toBe('RequestLimitExceeded');
    expect(faults.next('RunInstances')).toBeUndefined();
  });
});

describe('QueryParams', () => {
  it('reads numbered lists, filters and tags in index order', () => {
    const params = new QueryParams(
      new URLSearchParams(
        'InstanceId.2=i-b&InstanceId.1=i-a&InstanceId.10=i-j&Filter.1.Name=tag:x&Filter.1.Value.2=2&Filter.1.Value.1=1&Tag.1.Key=k&Tag.2.Key=v&Tag.2.Value=w',
      ),
    );
    expect(params.list('InstanceId')).toEqual(['i-a', 'i-b', 'i-j']);
    expect(params.filters()).toEqual([{ name: 'tag:x', values: ['1', '2'] }]);
    expect(params.tags()).toEqual([
      { key: 'k', value: '' },
      { key: 'v', value: 'w' },
    ]);
    expect(params.tagPatterns()[0]).toEqual({ key: 'k', value: undefined });
  });
});

describe('ids, zones and tokens', () => {
  it('accepts only EC2-shaped ids', () => {
    expect(isWellFormedId('i', 'i-0123456789abcdef0')).toBe(true);
    expect(isWellFormedId('i', 'i-12345678')).toBe(true);
    expect(isWellFormedId('i', 'i-123')).toBe(false);
    expect(isWellFormedId('ami', 'ami-0123456789ABCDEF0')).toBe(false);
  });

  it('derives zone ids and round-trips paging tokens', () => {
    expect(zoneId('us-east-1c')).toBe('use1-az3');
    expect(zoneId('eu-west-2a')).toBe('euw2-az1');
    expect(decodeToken(encodeToken(1234))).toBe(1234);
    expect(() => decodeToken('nonsense')).toThrow(/pagination token/);
  });
});
