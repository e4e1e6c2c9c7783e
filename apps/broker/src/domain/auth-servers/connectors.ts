import type { Logger } from 'pino';
import type { LdapSettings, RadiusSettings } from '@stagedoor/contract';
import { LdapDirectory } from '../../providers/directory/ldap.ts';
import { RadiusClient } from '../../providers/directory/radius.ts';
import type { Directory, MfaVerifier } from '../identity/directory.ts';
import type { SecretBox } from '../secrets/secret-box.ts';
import type { AuthServerRow } from './auth-servers.repository.ts';

/** What `secret_ciphertext` holds, as JSON, once opened. */
export interface AuthServerSecrets {
  bindPassword?: string;
  sharedSecret?: string;
  /** OIDC client secret (client_secret_basic / client_secret_post at the token endpoint). */
  clientSecret?: string;
}

export const secretContext = (id: string) => `auth_servers:${id}`;

/**
 * Turns an auth server row into the client that talks to it, opening its secrets only here and only
 * for the duration of a call: they are never logged, returned or kept.
 */
export class AuthServerConnectors {
  constructor(private readonly deps: { secrets: SecretBox; log: Logger }) {}

  directory(row: AuthServerRow): Directory {
    if (row.kind !== 'ldap') throw new Error(`auth server ${row.name} is ${row.kind}, not ldap`);
    return new LdapDirectory({ name: row.name, settings: row.config as LdapSettings, bindPassword: this.open(row).bindPassword ?? null, log: this.deps.log });
  }

  verifier(row: AuthServerRow): MfaVerifier {
    if (row.kind !== 'radius') throw new Error(`auth server ${row.name} is ${row.kind}, not radius`);
    return new RadiusClient({ name: row.name, settings: row.config as RadiusSettings, secret: this.open(row).sharedSecret ?? '', log: this.deps.log });
  }

  open(row: AuthServerRow): AuthServerSecrets {
    if (!row.secretCiphertext) return {};
    return JSON.parse(this.deps.secrets.open(row.secretCiphertext, secretContext(row.id))) as AuthServerSecrets;
  }

  seal(id: string, secrets: AuthServerSecrets): string | null {
    const present = Object.fromEntries(Object.entries(secrets).filter(([, v]) => v !== undefined));
    return Object.keys(present).length ? this.deps.secrets.seal(JSON.stringify(present), secretContext(id)) : null;
  }
}
