import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { Network } from './network.ts';

/** The protocols' usual ports (DEFAULT_PORTS in packages/contract/src/policies.ts). */
export const WORKSTATION_PORTS = { rdp: 3389, dcv: 8443, vnc: 5900, ssh: 22, pcoip: 4172 } as const;

/**
 * Figure 4's workstation side: a security group that admits the remote-display protocols from the
 * gateways' security group and from nothing else, and an instance profile (SSM, and the directory
 * join when there is a directory) that the broker may pass to the machines it launches. The agent
 * needs no inbound rule: it dials the brokers (HTTPS to the ALB through NAT), never the reverse.
 */
export class StagedoorWorkstations extends Construct {
  readonly securityGroup: ec2.SecurityGroup;
  readonly role: iam.Role;
  readonly instanceProfile: iam.InstanceProfile;

  constructor(scope: Construct, id: string, props: { network: Network; gatewaySecurityGroup: ec2.ISecurityGroup; joinsDirectory: boolean }) {
    super(scope, id);
    this.securityGroup = new ec2.SecurityGroup(this, 'Sg', {
      vpc: props.network.vpc,
      description: 'Stagedoor workstations: remote-display protocols from the gateways only',
      // Out through NAT only (private subnets): the agent to the brokers, updates, licence servers.
      allowAllOutbound: true,
    });
    for (const [name, port] of Object.entries(WORKSTATION_PORTS)) {
      this.securityGroup.connections.allowFrom(props.gatewaySecurityGroup, ec2.Port.tcp(port), `${name} from the gateways`);
    }
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'Stagedoor workstations: SSM Session Manager and, with a directory, the SSM domain join',
      managedPolicies: [
        iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore'),
        ...(props.joinsDirectory ? [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMDirectoryServiceAccess')] : []),
      ],
    });
    this.instanceProfile = new iam.InstanceProfile(this, 'Profile', { role: this.role });
  }
}
