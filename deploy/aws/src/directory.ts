import { Fn } from 'aws-cdk-lib';
import * as directoryservice from 'aws-cdk-lib/aws-directoryservice';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { DirectoryConfig } from './config.ts';
import type { Network } from './network.ts';

export interface DirectoryEndpoint {
  domainName: string;
  /** Comma-separated domain controller addresses (DNS servers of the domain). */
  dnsAddresses: string;
}

/**
 * The optional directory: AWS Managed Microsoft AD in two workstation subnets (its domain
 * controllers serve the workstations' domain join and the broker's LDAP sign-in), or the address of
 * an existing AD that the stack only passes on (starter site.yaml, outputs).
 */
export function defineDirectory(scope: Construct, config: DirectoryConfig, network: Network): DirectoryEndpoint | null {
  if (config.kind === 'none') return null;
  if (config.kind === 'existing-ad') return { domainName: config.domainName, dnsAddresses: config.dnsAddresses.join(',') };
  const c = new Construct(scope, 'Directory');
  const password = new secretsmanager.Secret(c, 'AdminPassword', {
    description: 'Password of the managed AD\'s "Admin" account',
    generateSecretString: { passwordLength: 32, excludeCharacters: '"\'\\/@ ', requireEachIncludedType: true },
  });
  const subnetIds = network.vpc.selectSubnets(network.workstationSubnets).subnetIds.slice(0, 2);
  const ad = new directoryservice.CfnMicrosoftAD(c, 'ManagedAd', {
    name: config.domainName,
    edition: config.edition,
    // A dynamic reference: CloudFormation reads the secret at deploy time, the template holds no password.
    password: password.secretValue.unsafeUnwrap(),
    vpcSettings: { vpcId: network.vpc.vpcId, subnetIds },
  });
  return { domainName: config.domainName, dnsAddresses: Fn.join(',', ad.attrDnsIpAddresses) };
}
