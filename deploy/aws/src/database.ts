import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import { Construct } from 'constructs';
import type { DeploymentConfig } from './config.ts';
import type { Network } from './network.ts';

/**
 * Aurora PostgreSQL Serverless v2: a writer and a reader in different AZs (a failover promotes the
 * reader in about a minute; the brokers reconnect), encrypted, backups kept, in the isolated subnets.
 * The brokers use only the writer: Stagedoor's invariants live in one database (DESIGN.md); the
 * reader is the standby.
 */
export class StagedoorDatabase extends Construct {
  readonly cluster: rds.DatabaseCluster;

  constructor(scope: Construct, id: string, props: { network: Network; securityGroup: ec2.ISecurityGroup; config: DeploymentConfig }) {
    super(scope, id);
    const { network, securityGroup, config } = props;
    this.cluster = new rds.DatabaseCluster(this, 'Cluster', {
      engine: rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_16_13 }),
      credentials: rds.Credentials.fromGeneratedSecret('stagedoor', { excludeCharacters: ' %+~`#$&*()|[]{}:;<>?!\'/@"\\=,' }),
      defaultDatabaseName: 'stagedoor',
      writer: rds.ClusterInstance.serverlessV2('writer', { publiclyAccessible: false }),
      // Promotion tier 0..1 with the writer: it scales with the writer so a failover lands on a warm instance.
      readers: [rds.ClusterInstance.serverlessV2('reader', { scaleWithWriter: true, publiclyAccessible: false })],
      serverlessV2MinCapacity: config.database.minCapacity,
      serverlessV2MaxCapacity: config.database.maxCapacity,
      vpc: network.vpc,
      vpcSubnets: network.databaseSubnets,
      securityGroups: [securityGroup],
      storageEncrypted: true,
      backup: { retention: Duration.days(config.database.backupRetentionDays), preferredWindow: '03:00-04:00' },
      preferredMaintenanceWindow: 'sun:04:30-sun:05:30',
      deletionProtection: true,
      // A stack deletion leaves a final snapshot, never nothing.
      removalPolicy: RemovalPolicy.SNAPSHOT,
      cloudwatchLogsExports: ['postgresql'],
      iamAuthentication: false,
      copyTagsToSnapshot: true,
    });
  }
}
