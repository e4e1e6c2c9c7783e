import type { Logger } from 'pino';
import type { Config } from '../../config/config.ts';
import type { Db } from '../../db/database.ts';
import { AuthServersRepository } from '../auth-servers/auth-servers.repository.ts';
import { AuthServersService } from '../auth-servers/auth-servers.service.ts';
import { AuthServerConnectors } from '../auth-servers/connectors.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import type { SecretBox } from '../secrets/secret-box.ts';
import type { AuthService } from './auth.service.ts';
import type { GroupsService } from './groups.service.ts';
import { LoginThrottleService } from './login-throttle.service.ts';
import { LoginThrottlesRepository } from './login-throttles.repository.ts';
import { MfaRepository } from './mfa.repository.ts';
import { PasswordCheck } from './password-check.ts';
import { ExternalProvisioning } from './provision.ts';
import { SsoSignIn } from './sso/complete-sign-in.ts';
import { OidcSignInService } from './sso/oidc-sign-in.service.ts';
import { OidcClient } from '../../providers/oidc/oidc-client.ts';
import { SsoIdentitiesRepository } from './sso/sso-identities.repository.ts';
import { SsoStatesRepository } from './sso/sso-states.repository.ts';
import { SignInService } from './sign-in.service.ts';
import { SamlRepository } from './saml/saml.repository.ts';
import { SamlSignInService } from './saml/saml-sign-in.service.ts';
import { TotpService } from './totp.service.ts';
import type { UsersRepository } from './users.repository.ts';
import type { AccessReview } from '../connections/access-review.ts';

/** The sign-in services (auth servers, password and second-factor steps, lockout, TOTP), built once in `createServices`. */
export function createSignInServices(deps: {
  db: Db;
  clock: Clock;
  log: Logger;
  config: Pick<Config, 'signIn'>;
  secrets: SecretBox;
  audit: AuditService;
  users: UsersRepository;
  groups: GroupsService;
  auth: AuthService;
  /** Directory group changes at sign-in end the access they take away. */
  access: Pick<AccessReview, 'enforce' | 'finish'>;
}) {
  const { db, clock, secrets, audit } = deps;
  const log = deps.log.child({ area: 'sign-in' });
  const authServers = new AuthServersService({
    db,
    repo: new AuthServersRepository(db),
    connectors: new AuthServerConnectors({ secrets, log: deps.log.child({ area: 'directory' }) }),
    secrets,
    audit,
    clock,
  });
  const mfa = new MfaRepository(db);
  const throttle = new LoginThrottleService({ repo: new LoginThrottlesRepository(db), audit, clock, policy: deps.config.signIn.lockout, log });
  const totp = new TotpService({ db, repo: mfa, secrets, audit, clock });
  const provisioning = new ExternalProvisioning({ db, users: deps.users, authServers, identities: new SsoIdentitiesRepository(db), clock, access: deps.access });
  const passwords = new PasswordCheck({ users: deps.users, authServers, provisioning });
  const signIn = new SignInService({ db, users: deps.users, passwords, authServers, auth: deps.auth, throttle, totp, mfa, audit, clock, log, policy: deps.config.signIn.mfa });
  // Both SSO kinds (OIDC, SAML) end here, and keep their one-time state in `ssoStates`.
  const sso = new SsoSignIn({ authServers, provisioning, signIn, audit });
  const ssoStates = new SsoStatesRepository(db);
  const oidc = new OidcSignInService({ authServers, states: ssoStates, sso, client: new OidcClient(), clock, publicUrl: deps.config.signIn.publicUrl });
  const saml = new SamlSignInService({ authServers, states: ssoStates, assertions: new SamlRepository(db), sso, clock, publicUrl: deps.config.signIn.publicUrl });
  return { authServers, loginThrottle: throttle, totp, signIn, sso, ssoStates, oidc, saml };
}
