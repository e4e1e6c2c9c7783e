import { Aws } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';

export interface BrokerEc2PolicyProps {
  workstationAmiIds: string[];
  workstationSubnetIds: string[];
  workstationSecurityGroupId: string;
  workstationRole: iam.IRole;
}

const ec2Arn = (resource: string) => `arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${Aws.ACCOUNT_ID}:${resource}`;

/**
 * The statements of docs/aws-iam-policy.md, with the stack's own AMIs, workstation subnets, security
 * group and workstation role in place of the placeholders: nothing more. Keep the two in step
 * (test/stack.test.ts compares the Sids with the document's).
 */
export function brokerEc2Statements(props: BrokerEc2PolicyProps): iam.PolicyStatement[] {
  const approvedParts = [
    ...props.workstationSubnetIds.map((id) => ec2Arn(`subnet/${id}`)),
    ec2Arn(`security-group/${props.workstationSecurityGroupId}`),
    ec2Arn('network-interface/*'),
    ec2Arn('key-pair/*'),
    ec2Arn('launch-template/*'),
  ];
  return [
    new iam.PolicyStatement({
      sid: 'Describe',
      actions: [
        'ec2:DescribeInstances',
        'ec2:DescribeInstanceStatus',
        'ec2:DescribeInstanceTypes',
        'ec2:DescribeImages',
        'ec2:DescribeSubnets',
        'ec2:DescribeSecurityGroups',
        'ec2:DescribeAvailabilityZones',
        'ec2:DescribeLaunchTemplates',
        'ec2:DescribeLaunchTemplateVersions',
      ],
      resources: ['*'],
    }),
    new iam.PolicyStatement({
      sid: 'RunInstancesFromApprovedParts',
      actions: ['ec2:RunInstances'],
      resources: approvedParts,
    }),
    // The document lists image ARNs in the statement above; here the AMIs come from a
    // CommaDelimitedList parameter, which CloudFormation cannot turn into ARNs (Fn::Join takes no
    // computed delimiter), so the same limit is written as a condition on the image id.
    new iam.PolicyStatement({
      sid: 'RunInstancesFromApprovedImages',
      actions: ['ec2:RunInstances'],
      resources: [`arn:${Aws.PARTITION}:ec2:${Aws.REGION}::image/*`],
      conditions: { StringEquals: { 'ec2:ImageID': props.workstationAmiIds } },
    }),
    new iam.PolicyStatement({
      sid: 'RunInstancesOnlyTagged',
      actions: ['ec2:RunInstances'],
      resources: [ec2Arn('instance/*'), ec2Arn('volume/*')],
      conditions: { StringEquals: { 'aws:RequestTag/stagedoor:managed': 'true' } },
    }),
    new iam.PolicyStatement({
      sid: 'TagOnLaunch',
      actions: ['ec2:CreateTags'],
      resources: [ec2Arn('instance/*'), ec2Arn('volume/*')],
      conditions: { StringEquals: { 'ec2:CreateAction': 'RunInstances' } },
    }),
    new iam.PolicyStatement({
      sid: 'PowerOnlyManaged',
      actions: ['ec2:StartInstances', 'ec2:StopInstances', 'ec2:RebootInstances', 'ec2:TerminateInstances', 'ec2:CreateTags'],
      resources: [ec2Arn('instance/*')],
      conditions: { StringEquals: { 'aws:ResourceTag/stagedoor:managed': 'true' } },
    }),
    // `POST /api/v1/prices/refresh` reads the region's list prices with the broker's credentials
    // (docs/aws-iam-policy.md, docs/cost.md); the Price List API has no resources to scope to.
    new iam.PolicyStatement({
      sid: 'ReadPriceList',
      actions: ['pricing:GetProducts'],
      resources: ['*'],
    }),
    new iam.PolicyStatement({
      sid: 'PassWorkstationRole',
      actions: ['iam:PassRole'],
      resources: [props.workstationRole.roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
    }),
  ];
}
