import { describe, expect, it } from 'vitest';
import { checkConfig, configFromContext, DEFAULT_CONFIG, DeploymentConfigError } from '../src/config.ts';

describe('deployment config', () => {
  it('defaults to two AZs, two brokers and two gateways', () => {
    expect(configFromContext(undefined)).toEqual(DEFAULT_CONFIG);
    expect(configFromContext('{"azCount":3,"brokers":{"max":6}}')).toMatchObject({ azCount: 3, brokers: { min: 2, max: 6 } });
  });

  it.each([
    ['one broker', { brokers: { min: 1, max: 3 } }, /brokers.min must be at least 2/],
    ['no room to roll', { brokers: { min: 2, max: 2 } }, /brokers.max must be above brokers.min/],
    ['one gateway', { gateways: { min: 1, max: 3 } }, /gateways.min must be at least 2/],
    ['four AZs', { azCount: 4 }, /azCount must be 2 or 3/],
    ['more NATs than AZs', { natGateways: 3 }, /natGateways must be between 1 and azCount/],
    ['backups kept 0 days', { database: { minCapacity: 0.5, maxCapacity: 4, backupRetentionDays: 0 } }, /backupRetentionDays/],
  ])('refuses %s', (_name, change, message) => {
    expect(() => checkConfig({ ...DEFAULT_CONFIG, ...change } as typeof DEFAULT_CONFIG)).toThrow(message);
    expect(() => checkConfig({ ...DEFAULT_CONFIG, ...change } as typeof DEFAULT_CONFIG)).toThrow(DeploymentConfigError);
  });

  it('refuses an existing VPC whose subnet lists do not match its AZs', () => {
    const existingVpc = { vpcId: 'vpc-1', availabilityZones: ['a', 'b'], publicSubnetIds: ['s1', 's2'], publicSubnetCidrs: ['10.0.0.0/24'], brokerSubnetIds: ['s3', 's4'], workstationSubnetIds: ['s5', 's6'], databaseSubnetIds: ['s7', 's8'] };
    expect(() => checkConfig({ ...DEFAULT_CONFIG, existingVpc })).toThrow(/existingVpc.publicSubnetCidrs must list one entry per AZ/);
  });
});
