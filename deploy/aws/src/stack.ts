import { Aws, CfnOutput, DefaultStackSynthesizer, Stack, Tags, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { Construct } from 'constructs';
import { brokerEc2Statements } from './broker-policy.ts';
import { StagedoorBrokers } from './brokers.ts';
import { checkConfig, type DeploymentConfig } from './config.ts';
import { StagedoorDatabase } from './database.ts';
import { defineDirectory } from './directory.ts';
import { GatewayEnroller } from './enroller.ts';
import { StagedoorGateways, enrollParameterPrefix } from './gateways.ts';
import { deployTimeAzs, StagedoorNetwork } from './network.ts';
import { suppressAcceptedFindings } from './nag.ts';
import { defineParameters } from './parameters.ts';
import { StagedoorSecrets } from './secrets.ts';
import { starterSiteYaml } from './site-yaml.ts';
import { brokerUserData, gatewayUserData } from './user-data.ts';
import { StagedoorWorkstations } from './workstations.ts';

export interface StagedoorStackProps extends StackProps {
  config: DeploymentConfig;
}

/**
 * The seed's Figures 1, 2 and 4 as one stack: network, brokers on Aurora behind an ALB, gateways
 * behind an NLB, the workstations' security group and instance profile, optionally a directory.
 * Region- and account-agnostic (no lookups): one synthesized template serves every region.
 */
export class StagedoorStack extends Stack {
  readonly network: StagedoorNetwork;
  readonly database: StagedoorDatabase;
  readonly brokers: StagedoorBrokers;
  readonly gateways: StagedoorGateways;
  readonly workstations: StagedoorWorkstations;
  readonly enroller: GatewayEnroller;
  private azCount?: number;

  constructor(scope: Construct, id: string, props: StagedoorStackProps) {
    // No BootstrapVersion parameter: the published template deploys with plain CloudFormation.
    super(scope, id, { synthesizer: new DefaultStackSynthesizer({ generateBootstrapVersionRule: false }), description: 'Stagedoor: connection broker and gateways for virtual workstations', ...props });
    const config = checkConfig(props.config);
    this.azCount = config.existingVpc ? config.existingVpc.availabilityZones.length : config.azCount;
    Tags.of(this).add('stagedoor:stack', Aws.STACK_NAME);

    let gatewayNlbDns = '';
    const params = defineParameters(this, () => gatewayNlbDns);
    const release = { bucket: params.releaseBucket, key: params.releaseKey };
    this.network = new StagedoorNetwork(this, 'Network', config);
    const network = this.network;

    const secrets = new StagedoorSecrets(this, 'Secrets');
    const dbSg = new ec2.SecurityGroup(this, 'DatabaseSg', { vpc: network.vpc, description: 'Stagedoor Aurora: PostgreSQL from the brokers only', allowAllOutbound: false });
    this.database = new StagedoorDatabase(this, 'Database', { network, securityGroup: dbSg, config });
    const dbSecret = this.database.cluster.secret;
    if (!dbSecret) throw new Error('the Aurora cluster has no generated secret');

    this.brokers = new StagedoorBrokers(this, 'Brokers', {
      network,
      config,
      instanceType: params.brokerInstanceType,
      certificateArn: params.certificateArn,
      release,
      userData: brokerUserData({
        release,
        databaseSecretArn: dbSecret.secretArn,
        secretKeyArn: secrets.secretKey.secretArn,
        adminPasswordArn: secrets.adminPassword.secretArn,
        trustedProxies: network.publicSubnetCidrs,
      }),
    });
    this.database.cluster.connections.allowDefaultPortFrom(this.brokers.securityGroup, 'the brokers');
    for (const secret of [dbSecret, secrets.secretKey, secrets.adminPassword]) secret.grantRead(this.brokers.role);

    const gatewayGroupName = `${Aws.STACK_NAME}-gateways`;
    this.gateways = new StagedoorGateways(this, 'Gateways', {
      network,
      config,
      groupName: gatewayGroupName,
      instanceType: params.gatewayInstanceType,
      release,
      userData: gatewayUserData({ release, brokerDomain: params.brokerDomain, enrollParameterPrefix: enrollParameterPrefix(), proxySources: network.publicSubnetCidrs }),
    });
    gatewayNlbDns = this.gateways.loadBalancer.loadBalancerDnsName;
    this.enroller = new GatewayEnroller(this, 'GatewayEnroller', { gatewayGroupName, adminPassword: secrets.adminPassword, brokerDomain: params.brokerDomain, gatewayAddress: params.gatewayAddress });
    // The rule must exist before the group's first launches, or those gateways are never enrolled.
    this.gateways.group.node.addDependency(this.enroller.rule, this.enroller.function);

    const directory = defineDirectory(this, config.directory, network);
    this.workstations = new StagedoorWorkstations(this, 'Workstations', { network, gatewaySecurityGroup: this.gateways.securityGroup, joinsDirectory: directory !== null });
    for (const statement of brokerEc2Statements({
      workstationAmiIds: params.workstationAmiIds,
      workstationSubnetIds: network.workstationSubnetIds,
      workstationSecurityGroupId: this.workstations.securityGroup.securityGroupId,
      workstationRole: this.workstations.role,
    })) {
      this.brokers.role.addToPrincipalPolicy(statement);
    }

    new CfnOutput(this, 'BrokerUrl', { value: `https://${params.brokerDomain}`, description: 'The console and API (sign in as admin)' });
    new CfnOutput(this, 'BrokerLoadBalancerDns', { value: this.brokers.loadBalancer.loadBalancerDnsName, description: 'Point BrokerDomain here (CNAME or Route 53 alias)' });
    new CfnOutput(this, 'GatewayLoadBalancerDns', { value: gatewayNlbDns, description: 'Point GatewayDomain here (CNAME or Route 53 alias)' });
    new CfnOutput(this, 'GatewayAddress', { value: params.gatewayAddress, description: 'The address clients dial, in every gateway\'s enrolment record' });
    new CfnOutput(this, 'AdminPasswordSecret', { value: secrets.adminPassword.secretArn, description: 'The first admin\'s password (user "admin"); the gateway enroller uses it too' });
    new CfnOutput(this, 'WorkstationSecurityGroupId', { value: this.workstations.securityGroup.securityGroupId });
    new CfnOutput(this, 'WorkstationInstanceProfileArn', { value: this.workstations.instanceProfile.instanceProfileArn });
    new CfnOutput(this, 'WorkstationSubnetIds', { value: network.workstationSubnetIds.join(',') });
    if (directory) new CfnOutput(this, 'DirectoryDnsAddresses', { value: directory.dnsAddresses, description: `Domain controllers of ${directory.domainName}` });
    new CfnOutput(this, 'StarterSiteYaml', {
      description: 'A starting point for stagedoor apply -f site.yaml',
      value: starterSiteYaml({
        workstationSubnetIds: network.workstationSubnetIds,
        workstationSecurityGroupId: this.workstations.securityGroup.securityGroupId,
        workstationInstanceProfileArn: this.workstations.instanceProfile.instanceProfileArn,
        directory,
        parameters: params,
      }),
    });
    suppressAcceptedFindings(this);
  }

  /** 2 or 3 of the region's AZs, picked at deploy time (Fn::GetAZs): no context lookup. */
  override get availabilityZones(): string[] {
    return deployTimeAzs(this.azCount ?? 2);
  }
}
