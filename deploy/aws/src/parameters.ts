import { CfnCondition, CfnParameter, Fn } from 'aws-cdk-lib';
import type { Construct } from 'constructs';

/**
 * What a studio sets per deployment, as CloudFormation parameters: the published template
 * (dist/stagedoor-aws.template.json) is deployed as is, with these filled in the console or with
 * `aws cloudformation deploy --parameter-overrides`. docs/deploy-aws.md lists them.
 */
export interface Parameters {
  certificateArn: string;
  brokerDomain: string;
  /** The gateway host name clients dial; the NLB's own DNS name when the parameter is empty. */
  gatewayAddress: string;
  releaseBucket: string;
  releaseKey: string;
  brokerInstanceType: string;
  gatewayInstanceType: string;
  workstationAmiIds: string[];
  radiusServer: string;
  radiusPort: string;
  hasRadius: CfnCondition;
}

export function defineParameters(scope: Construct, nlbDnsName: () => string): Parameters {
  const certificateArn = new CfnParameter(scope, 'CertificateArn', {
    type: 'String',
    allowedPattern: '^arn:aws[a-z-]*:acm:[a-z0-9-]+:\\d{12}:certificate/[A-Za-z0-9-]+$',
    description: 'ACM certificate for BrokerDomain, used by the brokers\' Application Load Balancer (HTTPS)',
  });
  const brokerDomain = new CfnParameter(scope, 'BrokerDomain', {
    type: 'String',
    allowedPattern: '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$',
    description: 'Host name of the broker (console, API, agents, gateways), e.g. stagedoor.studio.example; point it at the ALB (output BrokerLoadBalancerDns)',
  });
  const gatewayDomain = new CfnParameter(scope, 'GatewayDomain', {
    type: 'String',
    default: '',
    allowedPattern: '^([a-z0-9]([a-z0-9.-]*[a-z0-9])?)?$',
    description: 'Host name clients dial for gateways, e.g. gw.studio.example (alias to the NLB). Empty: the NLB\'s DNS name',
  });
  const releaseBucket = new CfnParameter(scope, 'ReleaseBucket', {
    type: 'String',
    allowedPattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$',
    description: 'S3 bucket holding the release artifact (npm run release: dist/stagedoor-<version>-linux-x64.tar.gz)',
  });
  const releaseKey = new CfnParameter(scope, 'ReleaseKey', {
    type: 'String',
    allowedPattern: '^[A-Za-z0-9!_.*\'()/-]+\\.tar\\.gz$',
    description: 'S3 key of the release artifact, e.g. releases/stagedoor-0.2.0-linux-x64.tar.gz; a new key and a stack update roll the brokers and gateways',
  });
  const brokerInstanceType = new CfnParameter(scope, 'BrokerInstanceType', {
    type: 'String',
    default: 't3.medium',
    allowedPattern: '^[a-z][a-z0-9-]*\\.[a-z0-9]+$',
    description: 'EC2 instance type of the brokers (x86_64: the release artifact is linux-x64)',
  });
  const gatewayInstanceType = new CfnParameter(scope, 'GatewayInstanceType', {
    type: 'String',
    default: 'c6i.large',
    allowedPattern: '^[a-z][a-z0-9-]*\\.[a-z0-9]+$',
    description: 'EC2 instance type of the gateways (x86_64; network-bound: c6i/c7i)',
  });
  const workstationAmiIds = new CfnParameter(scope, 'WorkstationAmiIds', {
    type: 'CommaDelimitedList',
    description: 'The workstation AMIs pools may launch (the broker\'s IAM policy allows RunInstances from these only), e.g. ami-0123…,ami-0456…',
  });
  const radiusServer = new CfnParameter(scope, 'RadiusServer', {
    type: 'String',
    default: '',
    allowedPattern: '^([A-Za-z0-9.-]+)?$',
    description: 'Optional RADIUS second factor (host), passed through to the starter site.yaml; its shared secret stays out of the stack (${RADIUS_SECRET} at apply)',
  });
  const radiusPort = new CfnParameter(scope, 'RadiusPort', { type: 'Number', default: 1812, minValue: 1, maxValue: 65535, description: 'Port of RadiusServer' });
  const hasGatewayDomain = new CfnCondition(scope, 'HasGatewayDomain', { expression: Fn.conditionNot(Fn.conditionEquals(gatewayDomain.valueAsString, '')) });
  const hasRadius = new CfnCondition(scope, 'HasRadius', { expression: Fn.conditionNot(Fn.conditionEquals(radiusServer.valueAsString, '')) });
  return {
    certificateArn: certificateArn.valueAsString,
    brokerDomain: brokerDomain.valueAsString,
    get gatewayAddress() {
      return Fn.conditionIf(hasGatewayDomain.logicalId, gatewayDomain.valueAsString, nlbDnsName()).toString();
    },
    releaseBucket: releaseBucket.valueAsString,
    releaseKey: releaseKey.valueAsString,
    brokerInstanceType: brokerInstanceType.valueAsString,
    gatewayInstanceType: gatewayInstanceType.valueAsString,
    workstationAmiIds: workstationAmiIds.valueAsList,
    radiusServer: radiusServer.valueAsString,
    radiusPort: radiusPort.valueAsString,
    hasRadius,
  };
}
