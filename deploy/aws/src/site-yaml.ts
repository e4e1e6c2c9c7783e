import { Aws, Fn } from 'aws-cdk-lib';
import type { DirectoryEndpoint } from './directory.ts';
import type { Parameters } from './parameters.ts';

/**
 * The starter site.yaml for `stagedoor apply` (stack output StarterSiteYaml): the aws-ec2 provider on
 * the brokers' instance role (`default-chain`, the policy of docs/aws-iam-policy.md), and a pool
 * template with the stack's workstation subnets, security group, instance profile and first AMI, and
 * a routed protocol plan (the NLB forwards only the routed ports). Instance types, groups and
 * policies are the studio's to fill in (docs/examples/studio.yaml).
 * The directory and RADIUS settings are passed through when the stack has them; their secrets stay
 * in the environment of `stagedoor apply`.
 */
export function starterSiteYaml(props: {
  workstationSubnetIds: string[];
  workstationSecurityGroupId: string;
  workstationInstanceProfileArn: string;
  directory: DirectoryEndpoint | null;
  parameters: Parameters;
}): string {
  const lines = [
    '# Starter site.yaml made by the Stagedoor CloudFormation stack: stagedoor apply -f site.yaml',
    'version: 1',
    'providers:',
    '  - name: aws',
    '    kind: aws-ec2',
    `    region: ${Aws.REGION}`,
    '    credentials: { mode: default-chain }   # the brokers\' instance role',
    '    tagFilter: { "stagedoor:managed": ["true"] }',
    '# The gateways sit behind an NLB that forwards the routed ports only: plans use gatewayMode: routed.',
    'protocolPlans:',
    '  - name: routed',
    '    protocols:',
    '      - { protocol: rdp, viaGateway: true, gatewayMode: routed }',
    '      - { protocol: ssh, viaGateway: true, gatewayMode: routed }',
    'pools:',
    '  - name: workstations',
    '    provider: aws',
    '    template:',
    `      imageId: ${Fn.select(0, props.parameters.workstationAmiIds)}   # the first of WorkstationAmiIds`,
    '      instanceTypes: [g5.2xlarge]',
    `      subnetIds: [${Fn.join(', ', props.workstationSubnetIds)}]`,
    `      securityGroupIds: [${props.workstationSecurityGroupId}]`,
    `      iamInstanceProfile: ${props.workstationInstanceProfileArn}`,
    '      namePattern: ws-{seq:03}',
    '    minAvailable: 0',
    '    maxTotal: 10',
  ];
  const auth: string[] = [];
  if (props.directory) {
    auth.push(
      '  - name: directory',
      '    kind: ldap',
      '    config:',
      `      urls: [${Fn.join(', ', Fn.split(',', Fn.join('', ['"ldap://', Fn.join('","ldap://', Fn.split(',', props.directory.dnsAddresses)), '"'])))}]`,
      '      startTls: true',
      `      userSearchBase: ${domainToDn(props.directory.domainName)}`,
      '      userFilter: (sAMAccountName={username})',
      '      groupMembership: ad-member-of',
      '    bindPassword: ${AD_BIND_PASSWORD}',
    );
  }
  const radius = [
    '  - name: radius',
    '    kind: radius',
    '    purpose: second-factor',
    '    config:',
    `      servers: [{ host: ${props.parameters.radiusServer}, port: ${props.parameters.radiusPort} }]`,
    '    sharedSecret: ${RADIUS_SECRET}',
  ].join('\n');
  const radiusPart = Fn.conditionIf(props.parameters.hasRadius.logicalId, `${radius}\n`, '').toString();
  const authHeader = props.directory ? `authServers:\n${auth.join('\n')}\n` : Fn.conditionIf(props.parameters.hasRadius.logicalId, 'authServers:\n', '').toString();
  return `${lines.join('\n')}\n${authHeader}${radiusPart}`;
}

/** corp.example → DC=corp,DC=example */
export function domainToDn(domain: string): string {
  return domain.split('.').map((p) => `DC=${p}`).join(',');
}
