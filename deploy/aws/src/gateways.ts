import { Aws, Duration } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { grantReadRelease } from './brokers.ts';
import type { DeploymentConfig } from './config.ts';
import type { Network } from './network.ts';
import type { ReleaseLocation } from './user-data.ts';

/**
 * The routed-mode listeners (docs/gateway.md, "Routed modes" and "Behind a network load balancer"):
 * the balancer and the gateways use the same port numbers, the defaults of DEFAULT_ROUTED_PORTS.
 */
export const ROUTED_PORTS = { rdp: 3389, ssh: 22, tls: 8443, tunnel: 443 } as const;
/** The gateway's `GET /healthz` is on its HTTPS tunnel listener. */
export const HEALTH_PORT = ROUTED_PORTS.tunnel;

/** SSM parameter path under which the enroller leaves each new gateway instance its one-time token (ADR 0025). */
export const enrollParameterPrefix = () => `/stagedoor/${Aws.STACK_NAME}/gateway-enroll`;

/**
 * Figure 2: gateways in an Auto Scaling group in the public subnets, behind an internet-facing NLB
 * with one TCP listener per routed port. PROXY v2 is on at every target group (the client address a
 * grant is bound to comes from the header, so client IP preservation stays off) and the gateways read
 * it only from the public subnets' addresses, where the NLB's nodes are. The health check is the
 * gateway's HTTPS `/healthz`: a gateway that lost its brokers fails closed and leaves the rotation.
 */
export class StagedoorGateways extends Construct {
  readonly group: autoscaling.AutoScalingGroup;
  readonly role: iam.Role;
  readonly securityGroup: ec2.SecurityGroup;
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly targetGroups: elbv2.NetworkTargetGroup[] = [];

  constructor(
    scope: Construct,
    id: string,
    props: { network: Network; config: DeploymentConfig; groupName: string; instanceType: string; userData: ec2.UserData; release: ReleaseLocation},
  ) {
    super(scope, id);
    const { network, config } = props;
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'Stagedoor gateway: its release artifact, its enrolment token, SSM Session Manager',
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });
    grantReadRelease(this.role, props.release);
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'OwnEnrolmentToken',
        actions: ['ssm:GetParameter', 'ssm:DeleteParameter'],
        resources: [`arn:${Aws.PARTITION}:ssm:${Aws.REGION}:${Aws.ACCOUNT_ID}:parameter${enrollParameterPrefix()}/*`],
      }),
    );

    const nlbSg = new ec2.SecurityGroup(this, 'LoadBalancerSg', { vpc: network.vpc, description: 'Stagedoor gateway NLB: the routed ports from anywhere', allowAllOutbound: false });
    this.securityGroup = new ec2.SecurityGroup(this, 'InstanceSg', { vpc: network.vpc, description: 'Stagedoor gateways: the routed ports from the NLB only', allowAllOutbound: true });
    for (const [name, port] of Object.entries(ROUTED_PORTS)) {
      nlbSg.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(port), `routed ${name}`);
      this.securityGroup.connections.allowFrom(nlbSg, ec2.Port.tcp(port), `routed ${name} (and /healthz on ${HEALTH_PORT}) from the NLB`);
    }

    const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: ec2.MachineImage.latestAmazonLinux2023(),
      instanceType: new ec2.InstanceType(props.instanceType),
      role: this.role,
      securityGroup: this.securityGroup,
      userData: props.userData,
      requireImdsv2: true,
      // Public subnets, no NAT: a gateway reaches the brokers' ALB and AWS APIs on its own address.
      associatePublicIpAddress: true,
      blockDevices: [{ deviceName: '/dev/xvda', volume: ec2.BlockDeviceVolume.ebs(20, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }) }],
    });
    this.group = new autoscaling.AutoScalingGroup(this, 'Group', {
      // A fixed name: the enroller's rule matches it without a reference (enroller.ts).
      autoScalingGroupName: props.groupName,
      vpc: network.vpc,
      vpcSubnets: network.publicSubnets,
      launchTemplate,
      minCapacity: config.gateways.min,
      maxCapacity: config.gateways.max,
      // Long enough for the boot, the wait for a broker and the enrolment (user-data.ts waits up to 30 min).
      healthChecks: autoscaling.HealthChecks.withAdditionalChecks({ additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB], gracePeriod: Duration.minutes(15) }),
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({ minInstancesInService: config.gateways.min, maxBatchSize: 1, pauseTime: Duration.minutes(15), waitOnResourceSignals: false }),
      groupMetrics: [autoscaling.GroupMetrics.all()],
    });
    // Gateways are network-bound; CPU follows the relay's connection setup.
    this.group.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: 60 });

    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc: network.vpc,
      vpcSubnets: network.publicSubnets,
      internetFacing: true,
      crossZoneEnabled: true,
      securityGroups: [nlbSg],
    });
    for (const [name, port] of Object.entries(ROUTED_PORTS)) {
      // TCP, not TLS: the gateway needs the first packet as the client sent it (routing token, SNI).
      const listener = this.loadBalancer.addListener(`Routed-${name}`, { port, protocol: elbv2.Protocol.TCP });
      const group = listener.addTargets(`Gateways-${name}`, {
        port,
        protocol: elbv2.Protocol.TCP,
        targets: [this.group],
        proxyProtocolV2: true,
        preserveClientIp: false,
        deregistrationDelay: Duration.seconds(30),
        healthCheck: { protocol: elbv2.Protocol.HTTPS, port: String(HEALTH_PORT), path: '/healthz', interval: Duration.seconds(10), healthyThresholdCount: 2, unhealthyThresholdCount: 2 },
      });
      this.targetGroups.push(group);
    }
  }
}
