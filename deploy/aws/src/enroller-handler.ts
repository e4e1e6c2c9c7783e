/**
 * The gateway enroller's Lambda code (ADR 0025), inline in the template (CommonJS, the AWS SDK v3 of
 * the Node.js runtime): no asset to upload, so the published template deploys without `cdk bootstrap`.
 * When the gateway group has launched an instance it signs in to the broker as the stack's admin,
 * makes a one-time new-gateway enrolment token (name: the instance id; address: the gateway address
 * of the stack) and leaves it in an SSM SecureString for that instance, which polls for it.
 * It waits for a broker to answer (the first gateways boot with the first brokers); a refusal (4xx)
 * fails at once. An instance that is never enrolled never passes the NLB health check, and the
 * group replaces it (a new launch, a new attempt). `enrol` is exported for
 * test/enroller.test.ts, which runs it against a real broker.
 */
export const ENROLLER_HANDLER = `
const env = process.env;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function api(path, init) {
  const res = await fetch(env.BROKER_URL + path, { ...init, signal: AbortSignal.timeout(10000) });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(path + ': HTTP ' + res.status + ' ' + JSON.stringify(body)), { status: res.status });
  return { res, body };
}
async function enrol(instanceId, password) {
  const login = await api('/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) });
  if (!login.body.csrfToken) throw Object.assign(new Error('the admin sign-in asks for a second factor: the enroller account must not (ADR 0025)'), { status: 403 });
  const cookie = login.res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const headers = { 'content-type': 'application/json', cookie, 'x-csrf-token': login.body.csrfToken };
  try {
    const body = { cluster: env.CLUSTER, name: instanceId, publicAddress: env.GATEWAY_ADDRESS, expiresInMinutes: 60 };
    return (await api('/api/v1/gateways/enrollments', { method: 'POST', headers, body: JSON.stringify(body) })).body.token;
  } finally {
    await api('/api/v1/auth/logout', { method: 'POST', headers }).catch(() => {});
  }
}
exports.enrol = enrol;
exports.handler = async (event) => {
  const { SSMClient, PutParameterCommand } = require('@aws-sdk/client-ssm');
  const { SecretsManagerClient, GetSecretValueCommand } = require('@aws-sdk/client-secrets-manager');
  const d = event.detail;
  const password = (await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: env.ADMIN_SECRET_ARN }))).SecretString;
  const deadline = Date.now() + 12 * 60000;
  let token;
  for (;;) {
    try { token = await enrol(d.EC2InstanceId, password); break; } catch (e) {
      const retry = e.status === undefined || e.status >= 500 || e.status === 429;
      console.log(JSON.stringify({ instance: d.EC2InstanceId, error: String(e), retry }));
      if (!retry || Date.now() > deadline) throw e;
      await sleep(15000);
    }
  }
  await new SSMClient({}).send(new PutParameterCommand({ Name: env.PARAMETER_PREFIX + '/' + d.EC2InstanceId, Value: token, Type: 'SecureString', Overwrite: true }));
  console.log(JSON.stringify({ instance: d.EC2InstanceId, enrolled: true }));
};
`;
