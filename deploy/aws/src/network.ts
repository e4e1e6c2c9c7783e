import { Fn } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { DeploymentConfig } from './config.ts';

/** Subnet group names: the seed's Figure 4 tiers. */
export const SUBNETS = { public: 'public', brokers: 'brokers', workstations: 'workstations', database: 'database' } as const;

export interface Network {
  vpc: ec2.IVpc;
  publicSubnets: ec2.SubnetSelection;
  brokerSubnets: ec2.SubnetSelection;
  workstationSubnets: ec2.SubnetSelection;
  databaseSubnets: ec2.SubnetSelection;
  /** The public subnets' CIDR blocks: the NLB's addresses, the gateways' PROXY v2 source list. */
  publicSubnetCidrs: string[];
  workstationSubnetIds: string[];
}

/**
 * Figure 4: public subnets (load balancers, gateways, NAT gateways), private broker subnets,
 * private workstation subnets whose only way out is NAT, isolated database subnets — one of each per
 * AZ. Or an existing VPC given by ids (no lookup: synthesis needs no AWS account).
 */
export class StagedoorNetwork extends Construct implements Network {
  readonly vpc: ec2.IVpc;
  readonly publicSubnets: ec2.SubnetSelection;
  readonly brokerSubnets: ec2.SubnetSelection;
  readonly workstationSubnets: ec2.SubnetSelection;
  readonly databaseSubnets: ec2.SubnetSelection;
  readonly publicSubnetCidrs: string[];
  readonly workstationSubnetIds: string[];

  constructor(scope: Construct, id: string, config: DeploymentConfig) {
    super(scope, id);
    const existing = config.existingVpc;
    if (existing) {
      const subnets = (ids: string[]) => ({ subnets: ids.map((subnetId, i) => ec2.Subnet.fromSubnetAttributes(this, subnetId, { subnetId, availabilityZone: existing.availabilityZones[i] })) });
      this.vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
        vpcId: existing.vpcId,
        availabilityZones: existing.availabilityZones,
        publicSubnetIds: existing.publicSubnetIds,
        privateSubnetIds: [...existing.brokerSubnetIds, ...existing.workstationSubnetIds],
        isolatedSubnetIds: existing.databaseSubnetIds,
      });
      this.publicSubnets = subnets(existing.publicSubnetIds);
      this.brokerSubnets = subnets(existing.brokerSubnetIds);
      this.workstationSubnets = subnets(existing.workstationSubnetIds);
      this.databaseSubnets = subnets(existing.databaseSubnetIds);
      this.publicSubnetCidrs = existing.publicSubnetCidrs;
      this.workstationSubnetIds = existing.workstationSubnetIds;
      return;
    }
    const vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr('10.40.0.0/16'),
      // The stack's availabilityZones (2 or 3 Fn::GetAZs picks, see StagedoorStack) decide.
      maxAzs: config.azCount,
      natGateways: config.natGateways,
      subnetConfiguration: [
        { name: SUBNETS.public, subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
        { name: SUBNETS.brokers, subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 24 },
        // Room for a few thousand workstations per AZ.
        { name: SUBNETS.workstations, subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
        { name: SUBNETS.database, subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 26 },
      ],
      restrictDefaultSecurityGroup: false,
    });
    // Who talked to whom, for incident review; rejected flows are the interesting ones at a gateway.
    vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(new logs.LogGroup(this, 'FlowLogs', { retention: logs.RetentionDays.ONE_MONTH })),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });
    this.vpc = vpc;
    this.publicSubnets = { subnetGroupName: SUBNETS.public };
    this.brokerSubnets = { subnetGroupName: SUBNETS.brokers };
    this.workstationSubnets = { subnetGroupName: SUBNETS.workstations };
    this.databaseSubnets = { subnetGroupName: SUBNETS.database };
    this.publicSubnetCidrs = vpc.selectSubnets(this.publicSubnets).subnets.map((s) => s.ipv4CidrBlock);
    this.workstationSubnetIds = vpc.selectSubnets(this.workstationSubnets).subnetIds;
  }
}

/** The stack's AZs without a context lookup: the first n of the region's, resolved at deploy time. */
export function deployTimeAzs(count: number): string[] {
  return Array.from({ length: count }, (_, i) => Fn.select(i, Fn.getAzs()));
}
