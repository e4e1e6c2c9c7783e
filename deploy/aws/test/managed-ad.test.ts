import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../src/config.ts';
import { one, ofType, synth, target } from './synth.ts';

// Three AZs, one NAT gateway (the small-studio saving), and an AWS Managed Microsoft AD.
const { json, nagFindings } = synth({ ...DEFAULT_CONFIG, azCount: 3, natGateways: 1, directory: { kind: 'managed-ad', domainName: 'studio.example', edition: 'Standard' } });

describe('three AZs with a managed directory', () => {
  it('spreads every subnet tier over three AZs, with one NAT gateway', () => {
    const subnets = ofType(json, 'AWS::EC2::Subnet');
    expect(subnets).toHaveLength(12);
    const azs = new Set(subnets.map(([, s]) => JSON.stringify(s.Properties.AvailabilityZone)));
    expect(azs.size).toBe(3);
    expect(ofType(json, 'AWS::EC2::NatGateway')).toHaveLength(1);
    const [, brokers] = one(json, 'AWS::AutoScaling::AutoScalingGroup', (r) => !r.Properties.AutoScalingGroupName);
    expect(brokers.Properties.VPCZoneIdentifier).toHaveLength(3);
  });

  it('creates the managed AD in two workstation subnets with its password from Secrets Manager', () => {
    const [, ad] = one(json, 'AWS::DirectoryService::MicrosoftAD');
    expect(ad.Properties).toMatchObject({ Name: 'studio.example', Edition: 'Standard' });
    const subnetIds = (ad.Properties.VpcSettings as { SubnetIds: unknown[] }).SubnetIds.map(target);
    expect(subnetIds).toHaveLength(2);
    for (const id of subnetIds) expect(id).toMatch(/^NetworkVpcworkstationsSubnet/);
    expect(JSON.stringify(ad.Properties.Password)).toContain('{{resolve:secretsmanager:');
  });

  it('lets workstations join the domain and points the starter site.yaml at its controllers', () => {
    const [, role] = one(json, 'AWS::IAM::Role', (_r, id) => id.startsWith('WorkstationsRole'));
    expect(JSON.stringify(role.Properties.ManagedPolicyArns)).toContain('AmazonSSMDirectoryServiceAccess');
    const site = JSON.stringify(json.Outputs.StarterSiteYaml?.Value);
    expect(site).toContain('DnsIpAddresses');
    expect(site).toContain('DC=studio,DC=example');
  });

  it('passes cdk-nag AwsSolutions', () => {
    expect(nagFindings).toEqual([]);
  });
});
