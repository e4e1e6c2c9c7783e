import { Fn } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';

/**
 * Boot scripts of the broker and gateway instances (Amazon Linux 2023, x86_64). They install the
 * release artifact of issue 15 part 1 — `stagedoor-<version>-linux-x64.tar.gz` with
 * `install.sh --role <role>` (creates the `stagedoor` user, installs under /opt/stagedoor/current,
 * the systemd unit stagedoor-<role>.service reading /etc/stagedoor/<role>.env, enabled, not
 * started) — then write the unit's environment from Secrets Manager over the example and start it. A new ReleaseKey makes a new launch template
 * version, and the rolling update replaces the instances: an upgrade is a stack update.
 */
export interface ReleaseLocation {
  bucket: string;
  key: string;
}

const PRELUDE = [
  'set -euo pipefail',
  'exec > >(tee -a /var/log/stagedoor-boot.log) 2>&1',
  'imds() { curl -sf -H "X-aws-ec2-metadata-token: $(curl -sf -X PUT http://169.254.169.254/latest/api/token -H "X-aws-ec2-metadata-token-ttl-seconds: 60")" "http://169.254.169.254/latest/meta-data/$1"; }',
  'export AWS_DEFAULT_REGION="$(imds placement/region)"',
  'INSTANCE_ID="$(imds instance-id)"',
  'secret() { aws secretsmanager get-secret-value --secret-id "$1" --query SecretString --output text; }',
];

function install(release: ReleaseLocation, role: 'broker' | 'gateway'): string[] {
  return [
    'dnf install -y nodejs20 jq tar gzip',
    // AL2023's nodejs20 may install only node-20; the units find `node` through /usr/bin/env.
    'command -v node >/dev/null || ln -sf /usr/bin/node-20 /usr/bin/node',
    Fn.join('', ['aws s3 cp "s3://', release.bucket, '/', release.key, '" /tmp/stagedoor.tar.gz']),
    'rm -rf /opt/stagedoor-release && mkdir -p /opt/stagedoor-release',
    'tar -xzf /tmp/stagedoor.tar.gz -C /opt/stagedoor-release --strip-components=1',
    `/opt/stagedoor-release/install.sh --role ${role}`,
    'install -d -m 0750 /etc/stagedoor',
  ];
}

export function brokerUserData(props: {
  release: ReleaseLocation;
  databaseSecretArn: string;
  secretKeyArn: string;
  adminPasswordArn: string;
  /** The ALB's subnets: X-Forwarded-For is believed only from there. */
  trustedProxies: string[];
}): ec2.UserData {
  const ud = ec2.UserData.forLinux();
  ud.addCommands(
    ...PRELUDE,
    ...install(props.release, 'broker'),
    // Aurora's certificate is checked against the RDS CA bundle: encrypted and verified, not just encrypted.
    'curl -sf -o /etc/stagedoor/rds-ca.pem https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem',
    `DB="$(secret ${props.databaseSecretArn})"`,
    'DATABASE_URL="$(jq -r \'"postgres://\\(.username|@uri):\\(.password|@uri)@\\(.host):\\(.port)/\\(.dbname)?sslmode=verify-full&sslrootcert=/etc/stagedoor/rds-ca.pem"\' <<<"$DB")"',
    'umask 077',
    'cat > /etc/stagedoor/broker.env <<ENV',
    'DATABASE_URL=$DATABASE_URL',
    `STAGEDOOR_SECRET_KEY=$(secret ${props.secretKeyArn})`,
    `STAGEDOOR_ADMIN_PASSWORD=$(secret ${props.adminPasswordArn})`,
    Fn.join('', ['STAGEDOOR_TRUSTED_PROXIES=', Fn.join(',', props.trustedProxies)]),
    'STAGEDOOR_HOST=0.0.0.0',
    'PORT=8080',
    'STAGEDOOR_NODE_ID=$INSTANCE_ID',
    'ENV',
    'chgrp stagedoor /etc/stagedoor/broker.env && chmod 0640 /etc/stagedoor/broker.env',
    'systemctl enable --now stagedoor-broker.service',
  );
  return ud;
}

export function gatewayUserData(props: {
  release: ReleaseLocation;
  brokerDomain: string;
  /** SSM parameter path prefix the enroller writes this instance's one-time token under. */
  enrollParameterPrefix: string;
  /** The NLB's subnets: PROXY v2 headers are read only from there. */
  proxySources: string[];
}): ec2.UserData {
  const ud = ec2.UserData.forLinux();
  ud.addCommands(
    ...PRELUDE,
    ...install(props.release, 'gateway'),
    // Port 22 is the routed SSH jump host (docs/gateway.md); operators use SSM Session Manager.
    'systemctl disable --now sshd.service || true',
    `PARAM="${props.enrollParameterPrefix}/$INSTANCE_ID"`,
    // The enroller (ADR 0025) puts this instance's one-time token there once a broker answers.
    'for i in $(seq 1 180); do TOKEN="$(aws ssm get-parameter --with-decryption --name "$PARAM" --query Parameter.Value --output text 2>/dev/null)" && break; sleep 10; done',
    'test -n "${TOKEN:-}"',
    'umask 077',
    'cat > /etc/stagedoor/gateway.env <<ENV',
    Fn.join('', ['STAGEDOOR_BROKER_URLS=https://', props.brokerDomain]),
    'STAGEDOOR_GATEWAY_ENROLL_TOKEN=$TOKEN',
    'STAGEDOOR_GATEWAY_NAME=$INSTANCE_ID',
    'STAGEDOOR_GATEWAY_DATA_DIR=/var/lib/stagedoor/gateway',
    'STAGEDOOR_GATEWAY_PROXY_PROTOCOL=on',
    Fn.join('', ['STAGEDOOR_GATEWAY_PROXY_SOURCES=', Fn.join(',', props.proxySources)]),
    'STAGEDOOR_GATEWAY_RDP_PORT=3389',
    'STAGEDOOR_GATEWAY_SSH_PORT=22',
    'STAGEDOOR_GATEWAY_TLS_PORT=8443',
    'STAGEDOOR_GATEWAY_HTTPS_PORT=443',
    'ENV',
    'chgrp stagedoor /etc/stagedoor/gateway.env && chmod 0640 /etc/stagedoor/gateway.env',
    'systemctl enable --now stagedoor-gateway.service',
    // Once enrolled the credential is on disk; the used token goes from the file and the parameter.
    'for i in $(seq 1 60); do curl -skf https://127.0.0.1/healthz >/dev/null && break; sleep 5; done',
    "sed -i '/^STAGEDOOR_GATEWAY_ENROLL_TOKEN=/d' /etc/stagedoor/gateway.env",
    'aws ssm delete-parameter --name "$PARAM" || true',
  );
  return ud;
}
