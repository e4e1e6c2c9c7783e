import { Aws, Duration } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { DeploymentConfig } from './config.ts';
import type { Network } from './network.ts';
import type { ReleaseLocation } from './user-data.ts';

export const BROKER_PORT = 8080;

/**
 * Figure 1: brokers in an Auto Scaling group over the AZs' private subnets, behind an internet-facing
 * ALB (HTTPS with the ACM certificate; HTTP only redirects). The ALB's health check is the broker's
 * `/readyz` and the group uses it: an instance that stops being ready is replaced. A launch template
 * change (a new release) rolls through the group one instance at a time, never below the minimum.
 */
export class StagedoorBrokers extends Construct {
  readonly group: autoscaling.AutoScalingGroup;
  readonly role: iam.Role;
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly securityGroup: ec2.SecurityGroup;

  constructor(
    scope: Construct,
    id: string,
    props: { network: Network; config: DeploymentConfig; instanceType: string; certificateArn: string; userData: ec2.UserData; release: ReleaseLocation},
  ) {
    super(scope, id);
    const { network, config } = props;
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'Stagedoor broker: the EC2 policy of docs/aws-iam-policy.md, its secrets, SSM Session Manager',
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });
    grantReadRelease(this.role, props.release);

    const albSg = new ec2.SecurityGroup(this, 'LoadBalancerSg', { vpc: network.vpc, description: 'Stagedoor broker ALB: HTTPS (and HTTP to redirect) from anywhere', allowAllOutbound: false });
    albSg.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS: console, API, agents, gateways');
    albSg.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(80), 'HTTP, redirected to HTTPS');
    this.securityGroup = new ec2.SecurityGroup(this, 'InstanceSg', { vpc: network.vpc, description: 'Stagedoor brokers: HTTP from the ALB only', allowAllOutbound: true });
    this.securityGroup.connections.allowFrom(albSg, ec2.Port.tcp(BROKER_PORT), 'the ALB to the brokers (traffic and /readyz)');

    const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: ec2.MachineImage.latestAmazonLinux2023(),
      instanceType: new ec2.InstanceType(props.instanceType),
      role: this.role,
      securityGroup: this.securityGroup,
      userData: props.userData,
      requireImdsv2: true,
      // No key pair: operators use SSM Session Manager.
      blockDevices: [{ deviceName: '/dev/xvda', volume: ec2.BlockDeviceVolume.ebs(20, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }) }],
    });
    this.group = new autoscaling.AutoScalingGroup(this, 'Group', {
      vpc: network.vpc,
      vpcSubnets: network.brokerSubnets,
      launchTemplate,
      minCapacity: config.brokers.min,
      maxCapacity: config.brokers.max,
      healthChecks: autoscaling.HealthChecks.withAdditionalChecks({ additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB], gracePeriod: Duration.minutes(10) }),
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({ minInstancesInService: config.brokers.min, maxBatchSize: 1, pauseTime: Duration.minutes(10), waitOnResourceSignals: false }),
      groupMetrics: [autoscaling.GroupMetrics.all()],
    });
    this.group.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: 60 });

    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: network.vpc,
      vpcSubnets: network.publicSubnets,
      internetFacing: true,
      securityGroup: albSg,
      dropInvalidHeaderFields: true,
      // Live event streams (SSE) and the gateways' WebSocket control channels stay open.
      idleTimeout: Duration.seconds(3600),
    });
    const https = this.loadBalancer.addListener('Https', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      certificates: [elbv2.ListenerCertificate.fromArn(props.certificateArn)],
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      open: false,
    });
    https.addTargets('Brokers', {
      port: BROKER_PORT,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targets: [this.group],
      deregistrationDelay: Duration.seconds(30),
      healthCheck: { path: '/readyz', healthyHttpCodes: '200', interval: Duration.seconds(10), healthyThresholdCount: 2, unhealthyThresholdCount: 3 },
    });
    this.loadBalancer.addListener('Http', { port: 80, protocol: elbv2.ApplicationProtocol.HTTP, open: false, defaultAction: elbv2.ListenerAction.redirect({ protocol: 'HTTPS', port: '443', permanent: true }) });
  }
}

export function grantReadRelease(role: iam.IRole, release: ReleaseLocation): void {
  role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadRelease', actions: ['s3:GetObject'], resources: [`arn:${Aws.PARTITION}:s3:::${release.bucket}/${release.key}`] }));
}
