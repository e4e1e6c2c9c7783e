import { Aws, Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { ENROLLER_HANDLER } from './enroller-handler.ts';
import { enrollParameterPrefix } from './gateways.ts';

export const GATEWAY_CLUSTER = 'aws';

/**
 * Enrolment with no person handing a token (ADR 0025): each instance the gateway group launches gets
 * a one-time token made through the broker's own enrolment API (ADR 0016: the stack's gateway address
 * is in the record, not the gateway's word). The trigger is the group's "launch successful" event,
 * not a lifecycle hook: a hook created beside the group misses the group's first instances, and one
 * inside it would need the enroller before the group while the enroller's policy names the group.
 * The group has a fixed name for the same reason: the rule matches it without referencing it, and
 * the group is created after the rule, so its first launches are seen.
 */
export class GatewayEnroller extends Construct {
  readonly function: lambda.Function;
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: { gatewayGroupName: string; adminPassword: secretsmanager.ISecret; brokerDomain: string; gatewayAddress: string }) {
    super(scope, id);
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.THREE_MONTHS });
    const role = new iam.Role(this, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: 'Stagedoor gateway enroller' });
    logGroup.grantWrite(role);
    props.adminPassword.grantRead(role);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'LeaveToken', actions: ['ssm:PutParameter'], resources: [`arn:${Aws.PARTITION}:ssm:${Aws.REGION}:${Aws.ACCOUNT_ID}:parameter${enrollParameterPrefix()}/*`] }),
    );

    this.function = new lambda.Function(this, 'Function', {
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline(ENROLLER_HANDLER),
      role,
      logGroup,
      timeout: Duration.minutes(14),
      memorySize: 256,
      // No reserved concurrency: new accounts (10 concurrent executions) refuse any reservation.
      environment: {
        BROKER_URL: `https://${props.brokerDomain}`,
        GATEWAY_ADDRESS: props.gatewayAddress,
        CLUSTER: GATEWAY_CLUSTER,
        ADMIN_SECRET_ARN: props.adminPassword.secretArn,
        PARAMETER_PREFIX: enrollParameterPrefix(),
      },
      description: 'Makes a one-time Stagedoor enrolment token for each new gateway instance (ADR 0025)',
    });

    this.rule = new events.Rule(this, 'OnLaunch', {
      description: 'A gateway instance is launching: make its enrolment token',
      eventPattern: {
        source: ['aws.autoscaling'],
        detailType: ['EC2 Instance Launch Successful'],
        detail: { AutoScalingGroupName: [props.gatewayGroupName] },
      },
      targets: [new targets.LambdaFunction(this.function, { retryAttempts: 2, maxEventAge: Duration.hours(1) })],
    });
  }
}
