import { Validations, type Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

const IAM4_SSM = 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]';
const ec2Resource = (r: string) => `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:${r}]`;
const ENROL_PARAMS = 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/stagedoor/<AWS::StackName>/gateway-enroll/*]';

/**
 * The cdk-nag AwsSolutions findings this stack accepts, each with the reason it is right for
 * Stagedoor. Anything not listed here fails `cdk synth` and test/nag.test.ts. Acknowledgements are
 * per construct and per finding (cdk-nag v3 has no blanket suppression), so a new wildcard or a new
 * open port is a new finding.
 */
export function suppressAcceptedFindings(stack: Stack): void {
  const at = (path: string): IConstruct => {
    const found = stack.node.tryFindChild(path.split('/')[0] ?? '');
    const node = path.split('/').slice(1).reduce<IConstruct | undefined>((c, part) => c?.node.tryFindChild(part), found);
    if (!node) throw new Error(`nag.ts: no construct ${path}`);
    return node;
  };
  const ack = (path: string, id: string, reason: string) => {
    Validations.of(at(path)).acknowledge({ id, reason });
  };
  const optional = (path: string, id: string, reason: string) => {
    if (stack.node.tryFindChild(path.split('/')[0] ?? '')) ack(path, id, reason);
  };

  ack('Secrets/SecretKey', 'AwsSolutions-SMG4', 'STAGEDOOR_SECRET_KEY is rotated by the procedure of ADR 0015 (new key, old one in STAGEDOOR_SECRET_KEY_PREVIOUS while data is resealed); an automatic rotation would make sealed data unreadable');
  ack('Secrets/AdminPassword', 'AwsSolutions-SMG4', 'Used once, to create the first admin; the password then lives in the broker database (hashed) and is changed there; the gateway enroller signs in with it, so a rotation must change both (ADR 0025)');
  ack('Database/Cluster', 'AwsSolutions-SMG4', 'The brokers read the database credentials at boot into their environment; a rotation would break running brokers until replaced. Rotate with a rolling replacement of the broker group (docs/deploy-aws.md)');
  optional('Directory/AdminPassword', 'AwsSolutions-SMG4', 'The managed AD\'s "Admin" password is read by CloudFormation once, at creation; Directory Service has no rotation for it through Secrets Manager. Reset it with ds reset-user-password and update the secret');
  ack('Database/Cluster', 'AwsSolutions-RDS6', 'The brokers connect with a password over TLS verified against the RDS CA; node-postgres has no IAM token refresh in Stagedoor yet');
  for (const role of ['Brokers/Role', 'Gateways/Role', 'Workstations/Role']) {
    ack(role, IAM4_SSM, 'SSM Session Manager is the only operator access (no SSH keys); AWS maintains this policy as the SSM agent changes');
  }
  optional('Workstations/Role', 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMDirectoryServiceAccess]', 'The SSM domain join of workstations into the directory; AWS maintains it');
  ack('Brokers/Role', 'AwsSolutions-IAM5[Resource::*]', 'EC2 Describe* calls cannot be scoped to resources (docs/aws-iam-policy.md, statement Describe); they only read');
  ack('Brokers/Role', ec2Resource('network-interface/*'), 'RunInstances creates the network interface of the new instance; its subnet and security group are limited in the same statement');
  ack('Brokers/Role', ec2Resource('key-pair/*'), 'RunInstances checks the key pair named in a pool template; workstation access is through the gateway, keys are optional');
  ack('Brokers/Role', ec2Resource('launch-template/*'), 'Pools may launch from a launch template; its AMI, subnets and security group are still limited by the other RunInstances resources');
  ack('Brokers/Role', 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::image/*]', 'Limited by the condition ec2:ImageID to the WorkstationAmiIds parameter');
  ack('Brokers/Role', ec2Resource('instance/*'), 'Launch only with the tag stagedoor:managed=true (aws:RequestTag) and power actions only on instances carrying it (aws:ResourceTag): the instances do not exist before the launch');
  ack('Brokers/Role', ec2Resource('volume/*'), 'Volumes are created by RunInstances and must carry stagedoor:managed=true (aws:RequestTag)');
  ack('Gateways/Role', ENROL_PARAMS, 'A gateway reads and deletes its own one-time enrolment token; the parameter names are instance ids not known to the stack (ADR 0025)');
  ack('GatewayEnroller/Role', ENROL_PARAMS, 'The enroller writes one parameter per gateway instance id, known only at launch (ADR 0025)');
  ack('Brokers/LoadBalancerSg', 'AwsSolutions-EC23', 'The broker ALB is the public console, API and agent endpoint: HTTPS from anywhere, HTTP only to redirect');
  // CDK's own template validation flags the same two ports; same reason.
  ack('Gateways/LoadBalancerSg', 'CloudFormation-Validate::W2508', 'The routed RDP (3389) and SSH jump host (22) listeners are the gateway\'s public service, not an instance\'s admin port; each connection needs a grant secret');
  ack('Gateways/LoadBalancerSg', 'AwsSolutions-EC23', 'The gateway NLB serves remote-display clients anywhere; every connection must present a grant secret from the granted client address (docs/gateway.md, routed modes)');
  for (const group of ['Brokers/Group', 'Gateways/Group']) {
    ack(group, 'AwsSolutions-AS3', 'Scaling notifications add nothing for brokers and gateways: the load balancers\' health and the broker\'s own metrics and audit log are what operators watch (docs/operations.md)');
  }
  ack('Brokers/LoadBalancer', 'AwsSolutions-ELB2', 'The template is region-agnostic and ALB log delivery needs a region-specific bucket principal; enable access logs per deployment (docs/deploy-aws.md). The broker logs every request with its client address');
  ack('Gateways/LoadBalancer', 'AwsSolutions-ELB2', 'NLB access logs exist only for TLS listeners; these are TCP (the gateway needs the client\'s first packet). The gateway logs and audits every session and refusal');
}
