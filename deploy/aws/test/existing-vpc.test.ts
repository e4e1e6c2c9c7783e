import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, type DeploymentConfig } from '../src/config.ts';
import { parse } from 'yaml';
import { SiteFile } from '@stagedoor/contract';
import { one, ofType, resolveCfn, siteYamlRefs, synth, target } from './synth.ts';

// A studio's own VPC over three AZs (given by ids: no lookup) and its existing Active Directory.
const config: DeploymentConfig = {
  ...DEFAULT_CONFIG,
  existingVpc: {
    vpcId: 'vpc-0123456789abcdef0',
    availabilityZones: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'],
    publicSubnetIds: ['subnet-0aaa0000000000001', 'subnet-0aaa0000000000002', 'subnet-0aaa0000000000003'],
    publicSubnetCidrs: ['10.8.0.0/24', '10.8.1.0/24', '10.8.2.0/24'],
    brokerSubnetIds: ['subnet-0bbb0000000000001', 'subnet-0bbb0000000000002', 'subnet-0bbb0000000000003'],
    workstationSubnetIds: ['subnet-0ccc0000000000001', 'subnet-0ccc0000000000002', 'subnet-0ccc0000000000003'],
    databaseSubnetIds: ['subnet-0ddd0000000000001', 'subnet-0ddd0000000000002', 'subnet-0ddd0000000000003'],
  },
  directory: { kind: 'existing-ad', domainName: 'corp.example', dnsAddresses: ['10.8.10.10', '10.8.11.10'] },
};
const vpc = config.existingVpc!;
const { json, nagFindings } = synth(config);

describe('an existing VPC by ids', () => {
  it('creates no network of its own', () => {
    for (const type of ['AWS::EC2::VPC', 'AWS::EC2::Subnet', 'AWS::EC2::NatGateway', 'AWS::EC2::InternetGateway']) expect(ofType(json, type), type).toHaveLength(0);
  });

  it('puts brokers, gateways and the database in the given subnets', () => {
    const [, brokers] = one(json, 'AWS::AutoScaling::AutoScalingGroup', (r) => !r.Properties.AutoScalingGroupName);
    const [, gateways] = one(json, 'AWS::AutoScaling::AutoScalingGroup', (r) => Boolean(r.Properties.AutoScalingGroupName));
    expect(brokers.Properties.VPCZoneIdentifier).toEqual(vpc.brokerSubnetIds);
    expect(gateways.Properties.VPCZoneIdentifier).toEqual(vpc.publicSubnetIds);
    expect(one(json, 'AWS::RDS::DBSubnetGroup')[1].Properties.SubnetIds).toEqual(vpc.databaseSubnetIds);
    const [, nlb] = one(json, 'AWS::ElasticLoadBalancingV2::LoadBalancer', (r) => r.Properties.Type === 'network');
    expect(nlb.Properties.Subnets).toEqual(vpc.publicSubnetIds);
  });

  it('gives the gateways the given public CIDRs as PROXY sources and lets the broker launch only into the workstation subnets', () => {
    const [, lt] = one(json, 'AWS::EC2::LaunchTemplate', (_r, id) => id.startsWith('Gateways'));
    expect(JSON.stringify(lt.Properties.LaunchTemplateData)).toContain(`STAGEDOOR_GATEWAY_PROXY_SOURCES=${vpc.publicSubnetCidrs.join(',')}\\n`);
    const [, policy] = one(json, 'AWS::IAM::Policy', (r) => (r.Properties.Roles as unknown[]).some((x) => target(x)?.startsWith('BrokersRole')));
    const approved = JSON.stringify((policy.Properties.PolicyDocument as { Statement: Array<{ Sid?: string }> }).Statement.find((s) => s.Sid === 'RunInstancesFromApprovedParts'));
    for (const id of vpc.workstationSubnetIds) expect(approved).toContain(`:subnet/${id}`);
    for (const id of [...vpc.brokerSubnetIds, ...vpc.publicSubnetIds]) expect(approved).not.toContain(id);
  });

  it('passes the existing directory to the starter site.yaml and outputs', () => {
    const site = JSON.stringify(json.Outputs.StarterSiteYaml?.Value);
    expect(site).toContain('kind: ldap');
    expect(site).toContain('ldap://10.8.10.10');
    expect(site).toContain('DC=corp,DC=example');
    expect(ofType(json, 'AWS::DirectoryService::MicrosoftAD')).toHaveLength(0);
    expect(json.Outputs.DirectoryDnsAddresses?.Value).toBe('10.8.10.10,10.8.11.10');
  });

  it('makes a starter site.yaml with the directory as an LDAP auth server that stagedoor apply accepts', () => {
    const text = resolveCfn(json.Outputs.StarterSiteYaml?.Value, { refs: siteYamlRefs(json), attrs: (_r, attr) => (attr === 'GroupId' ? 'sg-0123456789abcdef0' : 'arn:aws:iam::123456789012:instance-profile/ws'), conditions: { HasRadius: false } }) as string;
    const site = SiteFile.parse(parse(text.replaceAll('${AD_BIND_PASSWORD}', 'bind-password')));
    expect(site.authServers).toEqual([expect.objectContaining({ name: 'directory', kind: 'ldap', config: expect.objectContaining({ urls: ['ldap://10.8.10.10', 'ldap://10.8.11.10'], startTls: true }) })]);
    expect(site.pools[0]?.template?.subnetIds).toEqual(vpc.workstationSubnetIds);
  });

  it('passes cdk-nag AwsSolutions', () => {
    expect(nagFindings).toEqual([]);
  });
});
