// Requests must be SigV4-signed, in the Authorization header or in the query string.
// The signature itself is not verified (there are no secrets to check it against); the
// access key id is read so tests can mark a key as refused.

import { authFailure, Ec2Error, missingParameter } from './errors.ts';
import type { QueryParams } from './query.ts';

const SIGV4 = 'AWS4-HMAC-SHA256';

function credentialKeyId(credential: string): string | undefined {
  const keyId = credential.split('/')[0];
  return keyId ? keyId : undefined;
}

/** Returns the access key id of a signed request, or throws EC2's refusal. */
export function authenticate(
  authorization: string | undefined,
  params: QueryParams,
  refusedKeys: ReadonlySet<string>,
): string {
  let keyId: string | undefined;
  if (authorization !== undefined) {
    if (!authorization.startsWith(`${SIGV4} `)) {
      throw new Ec2Error('IncompleteSignature', `Unsupported authorization type; expected ${SIGV4}.`);
    }
    const credential = /Credential=([^,\s]+)/.exec(authorization)?.[1];
    if (!credential || !/Signature=[0-9a-fA-F]+/.test(authorization)) {
      throw new Ec2Error(
        'IncompleteSignature',
        "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.",
      );
    }
    keyId = credentialKeyId(credential);
  } else if (params.get('X-Amz-Algorithm') === SIGV4) {
    const credential = params.get('X-Amz-Credential');
    if (!credential || !params.get('X-Amz-Signature')) {
      throw new Ec2Error('IncompleteSignature', "Query signing requires 'X-Amz-Credential' and 'X-Amz-Signature'.");
    }
    keyId = credentialKeyId(credential);
  }
  // EC2 answers an unsigned request by asking for the access key id.
  if (!keyId) throw missingParameter('AWSAccessKeyId');
  if (refusedKeys.has(keyId)) throw authFailure();
  return keyId;
}
