// EC2's error vocabulary. Client errors carry HTTP 400 (401 for credentials), server
// errors 5xx: throttling and `Unavailable` come back as 503, capacity shortages as 500,
// which is what makes the AWS SDK retry them.

export class Ec2Error extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, status = 400) {
    super(message);
    this.name = 'Ec2Error';
    this.code = code;
    this.status = status;
  }
}

const SERVER_ERRORS: Record<string, { status: number; message: string }> = {
  RequestLimitExceeded: { status: 503, message: 'Request limit exceeded.' },
  Unavailable: { status: 503, message: "The server is overloaded and can't handle the request." },
  ServiceUnavailable: { status: 503, message: 'The request has failed due to a temporary failure of the server.' },
  InternalError: { status: 500, message: 'An internal error has occurred.' },
  InsufficientInstanceCapacity: { status: 500, message: 'Insufficient capacity.' },
  InsufficientCapacity: { status: 500, message: 'There is not enough capacity to fulfill your request.' },
};

/** An injected fault, with EC2's status and wording unless the caller overrides them. */
export function faultError(code: string, message?: string, status?: number): Ec2Error {
  const known = SERVER_ERRORS[code];
  return new Ec2Error(code, message ?? known?.message ?? `Injected fault: ${code}`, status ?? known?.status ?? 400);
}

export const missingParameter = (name: string): Ec2Error =>
  new Ec2Error('MissingParameter', `The request must contain the parameter ${name}`);

export const invalidParameterValue = (message: string): Ec2Error => new Ec2Error('InvalidParameterValue', message);

export const invalidParameterCombination = (message: string): Ec2Error =>
  new Ec2Error('InvalidParameterCombination', message);

export const malformedId = (code: string, id: string): Ec2Error => new Ec2Error(code, `Invalid id: "${id}"`);

export function instancesNotFound(ids: string[]): Ec2Error {
  const message =
    ids.length === 1
      ? `The instance ID '${ids[0]}' does not exist`
      : `The instance IDs '${ids.join(', ')}' do not exist`;
  return new Ec2Error('InvalidInstanceID.NotFound', message);
}

export const incorrectInstanceState = (message: string): Ec2Error => new Ec2Error('IncorrectInstanceState', message);

export const authFailure = (): Ec2Error =>
  new Ec2Error('AuthFailure', 'AWS was not able to validate the provided access credentials', 401);

export const invalidPaginationToken = (): Ec2Error =>
  new Ec2Error('InvalidPaginationToken', 'The specified pagination token is not valid or is expired.');
