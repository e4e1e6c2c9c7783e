import { ProviderError, type ProviderErrorKind } from './cloud-provider.ts';

const CAPACITY = new Set([
  'InsufficientInstanceCapacity',
  'InsufficientCapacity',
  'InsufficientHostCapacity',
  'InsufficientReservedInstanceCapacity',
  'InstanceLimitExceeded',
  'VcpuLimitExceeded',
  'MaxSpotInstanceCountExceeded',
]);
const THROTTLED = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException', 'RequestThrottled']);
const AUTH = new Set([
  'AuthFailure',
  'UnauthorizedOperation',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'MissingAuthenticationToken',
  'ExpiredToken',
  'OptInRequired',
  'Blocked',
  'PendingVerification',
  'CredentialsProviderError',
  // The JSON-protocol services' words for the same (the Price List API).
  'UnrecognizedClientException',
  'AccessDeniedException',
  'MissingAuthenticationTokenException',
]);
const UNAVAILABLE = new Set(['Unavailable', 'ServiceUnavailable', 'InternalError', 'InternalFailure', 'TimeoutError', 'RequestTimeout']);
/** The instance cannot do what was asked (hibernate one launched without it; launch hibernation on a GPU family). */
const UNSUPPORTED = new Set(['UnsupportedHibernationConfiguration', 'UnsupportedOperation']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

/** Which request field an EC2 error code is about, so a 4xx can name it. */
const FIELD_OF: [RegExp, string][] = [
  [/^InvalidAMIID\./, 'imageId'],
  [/^InvalidSubnetID\./, 'subnetId'],
  [/^InvalidGroup(Id)?\./, 'securityGroupIds'],
  [/^InvalidKeyPair\./, 'keyName'],
  [/^InvalidLaunchTemplate(Id|Name)\./, 'launchTemplate'],
  [/^InvalidInstanceType$/, 'instanceType'],
  [/^InvalidParameterValue$/, ''],
];

export function kindOfEc2Code(code: string): ProviderErrorKind {
  if (CAPACITY.has(code)) return 'capacity';
  if (THROTTLED.has(code)) return 'throttled';
  if (AUTH.has(code)) return 'auth';
  if (UNAVAILABLE.has(code) || NETWORK_CODES.has(code)) return 'unavailable';
  if (UNSUPPORTED.has(code)) return 'unsupported';
  if (code.endsWith('.NotFound') || code === 'InvalidInstanceID.NotFound') return 'notFound';
  return 'invalid';
}

/** Turn whatever the SDK threw into a ProviderError carrying EC2's code and message. */
export function toProviderError(err: unknown, what: string): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = err as { name?: string; code?: string; message?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  const code = e.Code ?? (e.code && NETWORK_CODES.has(e.code) ? e.code : undefined) ?? e.name ?? 'Unknown';
  // EC2 answers an unsigned request with MissingParameter (AWSAccessKeyId): that is about credentials.
  const unsigned = code === 'IncompleteSignature' || (code === 'MissingParameter' && /AWSAccessKeyId/.test(e.message ?? ''));
  const kind = unsigned ? 'auth' : code === 'Unknown' || code === 'Error' ? networkKind(err) : kindOfEc2Code(code);
  const field = FIELD_OF.find(([re]) => re.test(code))?.[1];
  const detail = e.message && e.message !== code ? e.message : 'no message';
  return new ProviderError(kind, `EC2 ${what} failed: ${code}: ${detail}`, code, { cause: err, field: field || undefined });
}

function networkKind(err: unknown): ProviderErrorKind {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: string }).code;
    if (code && NETWORK_CODES.has(code)) return 'unavailable';
    e = (e as { cause?: unknown }).cause;
  }
  return 'unavailable';
}
