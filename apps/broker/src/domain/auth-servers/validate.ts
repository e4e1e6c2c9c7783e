import { X509Certificate } from 'node:crypto';
import type { z } from 'zod';
import { LdapSettings, LocalSettings, OidcSettings, RadiusSettings, SamlSettings, TotpSettings, type AuthServerKind } from '@stagedoor/contract';
import { ldapFilterProblem } from '../../providers/directory/ldap.ts';
import { InvalidInputError, type FieldProblem } from '../errors.ts';
import type { AuthServerConfig } from '../../db/schema/index.ts';

const SETTINGS: Record<AuthServerKind, z.ZodType> = { local: LocalSettings, ldap: LdapSettings, radius: RadiusSettings, totp: TotpSettings, oidc: OidcSettings, saml: SamlSettings };

/** Parse `value` with a contract schema, or throw an `InvalidInputError` naming each bad field under `prefix`. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, prefix = ''): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const fields: FieldProblem[] = r.error.issues.map((i) => ({ path: [prefix, ...i.path.map(String)].filter(Boolean).join('.') || prefix || 'body', message: i.message }));
  throw new InvalidInputError(`invalid auth server: ${fields.map((f) => `${f.path}: ${f.message}`).join('; ')}`, fields);
}

/** The settings of a `kind`, with defaults, plus the checks a schema cannot make (filter syntax, PEM). */
export function settingsFor(kind: AuthServerKind, config: unknown): AuthServerConfig {
  const parsed = parseOrThrow(SETTINGS[kind], config ?? {}, 'config') as AuthServerConfig;
  if (kind === 'ldap') {
    const s = parsed as z.output<typeof LdapSettings>;
    const problems: FieldProblem[] = [];
    const filterProblem = ldapFilterProblem(s.userFilter);
    if (filterProblem) problems.push({ path: 'config.userFilter', message: `is not a valid LDAP filter: ${filterProblem}` });
    if (s.caCertificate) {
      try {
        new X509Certificate(s.caCertificate);
      } catch (err) {
        problems.push({ path: 'config.caCertificate', message: `is not a readable PEM certificate: ${(err as Error).message}` });
      }
    }
    if (problems.length) throw new InvalidInputError(`invalid auth server: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems);
  }
  if (kind === 'saml') {
    const s = parsed as z.output<typeof SamlSettings>;
    const problems: FieldProblem[] = [];
    s.idpCertificates.forEach((pem, i) => {
      try {
        new X509Certificate(pem);
      } catch (err) {
        problems.push({ path: `config.idpCertificates[${i}]`, message: `is not a readable PEM certificate: ${(err as Error).message}` });
      }
    });
    if (problems.length) throw new InvalidInputError(`invalid auth server: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems);
  }
  return parsed;
}

/** local and ldap check passwords; totp is only a second factor; radius may be either (the table's check constraint, as a readable error). */
export function purposeFor(kind: AuthServerKind, purpose: 'primary' | 'second-factor' | undefined): 'primary' | 'second-factor' {
  const want = purpose ?? (kind === 'totp' || kind === 'radius' ? 'second-factor' : 'primary');
  if ((kind === 'local' || kind === 'ldap' || kind === 'oidc') && want !== 'primary') invalid('purpose', `a ${kind} server checks passwords: its purpose is primary`);
  if (kind === 'saml' && want !== 'primary') invalid('purpose', 'a saml server signs users in: its purpose is primary');
  if (kind === 'totp' && want !== 'second-factor') invalid('purpose', 'totp is a second factor only');
  return want;
}

export function invalid(path: string, message: string): never {
  throw new InvalidInputError(`invalid auth server: ${path}: ${message}`, [{ path, message }]);
}
