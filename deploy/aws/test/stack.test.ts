import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BROKER_PORT } from '../src/brokers.ts';
import { DEFAULT_CONFIG } from '../src/config.ts';
import { ROUTED_PORTS } from '../src/gateways.ts';
import { WORKSTATION_PORTS } from '../src/workstations.ts';
import { parse } from 'yaml';
import { SiteFile } from '@stagedoor/contract';
import { one, ofType, resolveCfn, siteYamlRefs, synth, target, type Resource } from './synth.ts';

// The default deployment: the template published as dist/stagedoor-aws.template.json.
const { json, nagFindings } = synth(DEFAULT_CONFIG);
const R = json.Resources;

const subnetsNamed = (name: string) => ofType(json, 'AWS::EC2::Subnet').filter(([, s]) => (s.Properties.Tags as Array<{ Key: string; Value: unknown }>).some((t) => t.Key === 'aws-cdk:subnet-name' && t.Value === name));
const azIndex = (s: Resource) => (s.Properties.AvailabilityZone as { 'Fn::Select': [number, unknown] })['Fn::Select'][0];
/** Where a subnet's default route goes: 'igw', 'nat' or undefined (isolated). */
const routeOf = (subnetId: string) => {
  const assoc = ofType(json, 'AWS::EC2::SubnetRouteTableAssociation').find(([, a]) => target(a.Properties.SubnetId) === subnetId);
  const table = target(assoc?.[1].Properties.RouteTableId);
  const route = ofType(json, 'AWS::EC2::Route').find(([, r]) => target(r.Properties.RouteTableId) === table && r.Properties.DestinationCidrBlock === '0.0.0.0/0');
  if (!route) return undefined;
  return route[1].Properties.GatewayId ? 'igw' : route[1].Properties.NatGatewayId ? 'nat' : 'other';
};
const sgNamed = (description: string) => one(json, 'AWS::EC2::SecurityGroup', (r) => String(r.Properties.GroupDescription).startsWith(description))[0];
const ingressesTo = (sg: string) => [
  ...ofType(json, 'AWS::EC2::SecurityGroupIngress').filter(([, r]) => target(r.Properties.GroupId) === sg).map(([, r]) => r.Properties),
  ...(((R[sg]?.Properties.SecurityGroupIngress as Array<Record<string, unknown>> | undefined) ?? [])),
];
const userData = (launchTemplate: string) => JSON.stringify((R[launchTemplate]?.Properties.LaunchTemplateData as { UserData: unknown }).UserData);

describe('network (Figure 4)', () => {
  it('has public, broker, workstation and database subnets in two AZs each', () => {
    for (const name of ['public', 'brokers', 'workstations', 'database']) {
      const subnets = subnetsNamed(name);
      expect(subnets, name).toHaveLength(2);
      expect(new Set(subnets.map(([, s]) => azIndex(s))), name).toEqual(new Set([0, 1]));
    }
  });

  it('routes public subnets to the internet gateway, workstations and brokers through NAT only, databases nowhere', () => {
    for (const [id] of subnetsNamed('public')) expect(routeOf(id)).toBe('igw');
    for (const [id] of [...subnetsNamed('brokers'), ...subnetsNamed('workstations')]) expect(routeOf(id)).toBe('nat');
    for (const [id] of subnetsNamed('database')) expect(routeOf(id)).toBeUndefined();
    expect(ofType(json, 'AWS::EC2::NatGateway')).toHaveLength(DEFAULT_CONFIG.natGateways);
  });
});

describe('brokers (Figure 1)', () => {
  const [asgId, asg] = one(json, 'AWS::AutoScaling::AutoScalingGroup', (r) => !r.Properties.AutoScalingGroupName);
  const [, alb] = one(json, 'AWS::ElasticLoadBalancingV2::LoadBalancer', (r) => r.Properties.Type === 'application');

  it('runs at least two brokers in the private broker subnets, replaced on failed ELB checks, rolled one at a time', () => {
    expect(Number(asg.Properties.MinSize)).toBeGreaterThanOrEqual(2);
    expect((asg.Properties.VPCZoneIdentifier as unknown[]).map(target).sort()).toEqual(subnetsNamed('brokers').map(([id]) => id).sort());
    expect(asg.Properties.HealthCheckType).toBe('ELB');
    expect(asg.UpdatePolicy?.AutoScalingRollingUpdate).toMatchObject({ MaxBatchSize: 1, MinInstancesInService: Number(asg.Properties.MinSize) });
    expect(asgId).toMatch(/^Brokers/);
  });

  it('sits behind an internet-facing ALB: HTTPS with the certificate parameter, HTTP redirected, /readyz health check', () => {
    expect(alb.Properties.Scheme).toBe('internet-facing');
    const listeners = ofType(json, 'AWS::ElasticLoadBalancingV2::Listener').filter(([, l]) => l.Properties.Protocol === 'HTTPS' || l.Properties.Protocol === 'HTTP').map(([, l]) => l.Properties);
    const https = listeners.find((l) => l.Port === 443);
    expect(https?.Certificates).toEqual([{ CertificateArn: { Ref: 'CertificateArn' } }]);
    expect(listeners.find((l) => l.Port === 80)?.DefaultActions).toEqual([{ Type: 'redirect', RedirectConfig: { Protocol: 'HTTPS', Port: '443', StatusCode: 'HTTP_301' } }]);
    const [, tg] = one(json, 'AWS::ElasticLoadBalancingV2::TargetGroup', (r) => r.Properties.Protocol === 'HTTP');
    expect(tg.Properties).toMatchObject({ HealthCheckPath: '/readyz', Port: BROKER_PORT });
  });

  it('keeps the broker secrets in Secrets Manager and reads them at boot, with no SSH key and IMDSv2 only', () => {
    expect(ofType(json, 'AWS::SecretsManager::Secret')).toHaveLength(3);
    const [ltId, lt] = one(json, 'AWS::EC2::LaunchTemplate', (_r, id) => id.startsWith('Brokers'));
    const data = lt.Properties.LaunchTemplateData as Record<string, unknown>;
    expect(data.KeyName).toBeUndefined();
    expect(data.MetadataOptions).toMatchObject({ HttpTokens: 'required' });
    const script = userData(ltId);
    expect(script).toContain(`STAGEDOOR_TRUSTED_PROXIES=${subnetsNamed('public').map(([, s]) => s.Properties.CidrBlock).join(',')}\\n`);
    for (const v of ['DATABASE_URL=', 'STAGEDOOR_SECRET_KEY=', 'STAGEDOOR_ADMIN_PASSWORD=', 'STAGEDOOR_TRUSTED_PROXIES=', 'systemctl enable --now stagedoor-broker.service']) expect(script).toContain(v);
    expect(script).toContain('sslmode=verify-full');
  });

  it('gives the broker role the policy of docs/aws-iam-policy.md and passes only the workstation role', () => {
    const doc = readFileSync(new URL('../../../docs/aws-iam-policy.md', import.meta.url), 'utf8');
    const documented = [...doc.matchAll(/"Sid": "([A-Za-z]+)"/g)].map((m) => m[1]);
    const [, policy] = one(json, 'AWS::IAM::Policy', (r) => (r.Properties.Roles as unknown[]).some((x) => target(x)?.startsWith('BrokersRole')));
    const statements = (policy.Properties.PolicyDocument as { Statement: Array<{ Sid?: string; Action: unknown; Resource: unknown; Condition?: unknown }> }).Statement;
    const sids = statements.map((s) => s.Sid).filter(Boolean);
    for (const sid of documented) expect(sids).toContain(sid);
    // Every action the document grants is granted here (a new call in the broker lands in both).
    const granted = new Set(statements.flatMap((s) => [s.Action].flat() as string[]));
    const policyJson = JSON.parse(/```json\n([\s\S]*?)\n```/.exec(doc)![1]!) as { Statement: Array<{ Action: string | string[] }> };
    const documentedActions = policyJson.Statement.flatMap((s) => [s.Action].flat());
    expect(documentedActions.length).toBeGreaterThan(10);
    expect(documentedActions.filter((a) => !granted.has(a))).toEqual([]);
    expect(granted).toContain('pricing:GetProducts');
    const passRole = statements.find((s) => s.Sid === 'PassWorkstationRole');
    expect(target(passRole?.Resource)).toMatch(/^WorkstationsRole/);
    expect(passRole?.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } });
    expect(statements.find((s) => s.Sid === 'RunInstancesFromApprovedImages')?.Condition).toEqual({ StringEquals: { 'ec2:ImageID': { Ref: 'WorkstationAmiIds' } } });
    // Nothing beyond the document except reading its own secrets and the release artifact.
    const extra = statements.filter((s) => !s.Sid || ![...documented, 'RunInstancesFromApprovedImages', 'ReadRelease', 'ReadPriceList'].includes(s.Sid));
    for (const s of extra) expect([s.Action].flat()).toEqual(expect.arrayContaining(['secretsmanager:GetSecretValue']));
  });
});

describe('database', () => {
  it('is Aurora PostgreSQL, encrypted, backed up, a writer and a reader, in the isolated subnets', () => {
    const [, cluster] = one(json, 'AWS::RDS::DBCluster');
    expect(cluster.Properties).toMatchObject({ Engine: 'aurora-postgresql', StorageEncrypted: true, BackupRetentionPeriod: DEFAULT_CONFIG.database.backupRetentionDays, DeletionProtection: true });
    expect(ofType(json, 'AWS::RDS::DBInstance')).toHaveLength(2);
    const [, group] = one(json, 'AWS::RDS::DBSubnetGroup');
    expect((group.Properties.SubnetIds as unknown[]).map(target).sort()).toEqual(subnetsNamed('database').map(([id]) => id).sort());
  });

  it('admits PostgreSQL from the brokers only', () => {
    const rules = ingressesTo(sgNamed('Stagedoor Aurora'));
    expect(rules).toHaveLength(1);
    expect(target(rules[0]?.SourceSecurityGroupId)).toBe(sgNamed('Stagedoor brokers'));
    expect(rules[0]?.CidrIp).toBeUndefined();
  });
});

describe('gateways (Figure 2)', () => {
  const [, nlb] = one(json, 'AWS::ElasticLoadBalancingV2::LoadBalancer', (r) => r.Properties.Type === 'network');
  const [asgId, asg] = one(json, 'AWS::AutoScaling::AutoScalingGroup', (r) => Boolean(r.Properties.AutoScalingGroupName));

  it('run in the public subnets behind an internet-facing NLB', () => {
    expect(nlb.Properties.Scheme).toBe('internet-facing');
    expect((asg.Properties.VPCZoneIdentifier as unknown[]).map(target).sort()).toEqual(subnetsNamed('public').map(([id]) => id).sort());
    expect(Number(asg.Properties.MinSize)).toBeGreaterThanOrEqual(2);
    expect(asg.Properties.HealthCheckType).toBe('ELB');
  });

  it('has one TCP listener per routed port, PROXY v2 on, health checked on HTTPS /healthz', () => {
    const listeners = ofType(json, 'AWS::ElasticLoadBalancingV2::Listener').filter(([, l]) => l.Properties.Protocol === 'TCP');
    expect(listeners.map(([, l]) => l.Properties.Port).sort()).toEqual(Object.values(ROUTED_PORTS).sort());
    const groups = ofType(json, 'AWS::ElasticLoadBalancingV2::TargetGroup').filter(([, g]) => g.Properties.Protocol === 'TCP');
    expect(groups).toHaveLength(4);
    for (const [, g] of groups) {
      expect(g.Properties.TargetGroupAttributes).toEqual(expect.arrayContaining([{ Key: 'proxy_protocol_v2.enabled', Value: 'true' }]));
      expect(g.Properties).toMatchObject({ HealthCheckProtocol: 'HTTPS', HealthCheckPath: '/healthz', HealthCheckPort: '443' });
      expect(asg.Properties.TargetGroupARNs).toEqual(expect.arrayContaining([{ Ref: groups.find(([, x]) => x === g)?.[0] }]));
    }
    expect(asgId).toMatch(/^Gateways/);
  });

  it('read PROXY headers only from the NLB subnets and take their token from the enroller', () => {
    const [ltId] = one(json, 'AWS::EC2::LaunchTemplate', (_r, id) => id.startsWith('Gateways'));
    const script = userData(ltId);
    expect(script).toContain('STAGEDOOR_GATEWAY_PROXY_PROTOCOL=on');
    const cidrs = subnetsNamed('public').map(([, s]) => s.Properties.CidrBlock);
    expect(script).toContain(`STAGEDOOR_GATEWAY_PROXY_SOURCES=${cidrs.join(',')}\\n`);
    expect(script).toContain('gateway-enroll');
  });

  it('admit the routed ports from the NLB security group only', () => {
    const rules = ingressesTo(sgNamed('Stagedoor gateways'));
    expect(rules.map((r) => r.FromPort).sort()).toEqual(Object.values(ROUTED_PORTS).sort());
    for (const r of rules) expect(target(r.SourceSecurityGroupId)).toBe(sgNamed('Stagedoor gateway NLB'));
  });

  it('are enrolled by a rule that exists before the group launches anything', () => {
    const [ruleId, rule] = one(json, 'AWS::Events::Rule');
    expect(rule.Properties.EventPattern).toMatchObject({ source: ['aws.autoscaling'], 'detail-type': ['EC2 Instance Launch Successful'] });
    expect(JSON.stringify(rule.Properties.EventPattern)).toContain('-gateways');
    expect(asg.DependsOn).toEqual(expect.arrayContaining([ruleId]));
  });
});

describe('workstations', () => {
  it('admit the protocol ports from the gateways security group and from nothing else', () => {
    const rules = ingressesTo(sgNamed('Stagedoor workstations'));
    expect(rules.map((r) => r.FromPort).sort()).toEqual(Object.values(WORKSTATION_PORTS).sort());
    for (const r of rules) {
      expect(target(r.SourceSecurityGroupId)).toBe(sgNamed('Stagedoor gateways'));
      expect(r.CidrIp).toBeUndefined();
    }
  });

  it('outputs a starter site.yaml with the default-chain provider, subnets, security group and profile', () => {
    const site = JSON.stringify(json.Outputs.StarterSiteYaml?.Value);
    expect(site).toContain('credentials: { mode: default-chain }');
    for (const [id] of subnetsNamed('workstations')) expect(site).toContain(`{"Ref":"${id}"}`);
    expect(site).toContain(sgNamed('Stagedoor workstations'));
    expect(site).toMatch(/WorkstationsProfile/);
  });

  it('makes a starter site.yaml that stagedoor apply accepts once deployed (with and without RADIUS)', () => {
    for (const radius of [false, true]) {
      const text = resolveCfn(json.Outputs.StarterSiteYaml?.Value, {
        refs: siteYamlRefs(json),
        attrs: (_res, attr) => (attr === 'GroupId' ? 'sg-0123456789abcdef0' : attr === 'Arn' ? 'arn:aws:iam::123456789012:instance-profile/ws' : undefined),
        conditions: { HasRadius: radius },
      }) as string;
      const site = SiteFile.parse(parse(text.replaceAll('${RADIUS_SECRET}', 'shared-secret')));
      expect(site.providers[0]).toMatchObject({ kind: 'aws-ec2', region: 'eu-west-1', credentials: { mode: 'default-chain' } });
      expect(site.pools[0]?.template).toMatchObject({ imageId: 'ami-0123456789abcdef0', securityGroupIds: ['sg-0123456789abcdef0'], iamInstanceProfile: 'arn:aws:iam::123456789012:instance-profile/ws' });
      expect(site.pools[0]?.template?.subnetIds).toHaveLength(2);
      expect(site.authServers.map((a) => a.kind)).toEqual(radius ? ['radius'] : []);
    }
  });
});

describe('checks', () => {
  it('passes cdk-nag AwsSolutions with every accepted finding acknowledged in nag.ts', () => {
    expect(nagFindings).toEqual([]);
  });

  it('justifies every acknowledgement in the template metadata', () => {
    const reasons = Object.values(R).flatMap((r) => ((r as { Metadata?: { cdk_nag?: { rules_to_suppress: Array<{ id: string; reason: string }> } } }).Metadata?.cdk_nag?.rules_to_suppress ?? []));
    expect(reasons.length).toBeGreaterThan(10);
    for (const r of reasons) expect(r.reason.length, r.id).toBeGreaterThan(40);
  });

  it('matches the template snapshot (no asset hashes, no CDK version metadata)', async () => {
    expect(JSON.stringify(json)).not.toMatch(/cdk-hnb659fds|AssetParameters|CDKMetadata/);
    await expect(`${JSON.stringify(json, null, 2)}\n`).toMatchFileSnapshot('__snapshots__/stagedoor-aws.template.json');
  });
});
