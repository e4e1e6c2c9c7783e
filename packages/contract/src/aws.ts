/**
 * AWS regions, for validating a provider's region before any call is made (an unknown region would
 * otherwise surface as a DNS failure much later). Extend as AWS adds regions.
 */
export const AWS_REGIONS = [
  'us-east-1', 'us-east-2', 'us-west-1', 'us-west-2',
  'af-south-1',
  'ap-east-1', 'ap-east-2', 'ap-south-1', 'ap-south-2', 'ap-southeast-1', 'ap-southeast-2', 'ap-southeast-3', 'ap-southeast-4',
  'ap-southeast-5', 'ap-southeast-6', 'ap-southeast-7', 'ap-northeast-1', 'ap-northeast-2', 'ap-northeast-3',
  'ca-central-1', 'ca-west-1',
  'eu-central-1', 'eu-central-2', 'eu-west-1', 'eu-west-2', 'eu-west-3', 'eu-south-1', 'eu-south-2', 'eu-north-1',
  'il-central-1', 'me-south-1', 'me-central-1', 'mx-central-1', 'sa-east-1',
  'us-gov-east-1', 'us-gov-west-1', 'cn-north-1', 'cn-northwest-1',
] as const;

export function isKnownRegion(region: string): boolean {
  return (AWS_REGIONS as readonly string[]).includes(region);
}

/** EC2 id shapes: a prefix and 8 or 17 lowercase hex digits. */
export const EC2_ID = {
  image: /^ami-([0-9a-f]{8}|[0-9a-f]{17})$/,
  subnet: /^subnet-([0-9a-f]{8}|[0-9a-f]{17})$/,
  securityGroup: /^sg-([0-9a-f]{8}|[0-9a-f]{17})$/,
  instance: /^i-([0-9a-f]{8}|[0-9a-f]{17})$/,
  launchTemplate: /^lt-([0-9a-f]{8}|[0-9a-f]{17})$/,
} as const;
