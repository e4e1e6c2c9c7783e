import type { LdapSettings, OidcSettings, RadiusSettings } from '@stagedoor/contract';
import type { AuthServerConfig } from '../../db/schema/index.ts';

/**
 * Why a change of settings would send a stored, write-only secret somewhere it was not entered
 * for, or null when it would not. The service then asks for the secret again: otherwise anyone who
 * may edit an auth server could point it at their own host and receive the bind password or the
 * RADIUS shared secret without ever having been told it.
 *
 * LDAP: a URL not among the old ones, another bind DN, or weaker transport (StartTLS off,
 * allowInsecure on, another CA certificate). RADIUS: a host:port not among the old ones. Removing
 * or reordering destinations is fine. Pure: no I/O.
 */
export function secretDestinationChange(kind: string, before: AuthServerConfig, after: AuthServerConfig): string | null {
  if (kind === 'ldap') {
    const [b, a] = [before as Partial<LdapSettings>, after as Partial<LdapSettings>];
    const known = new Set((b.urls ?? []).map(normalizeUrl));
    const added = (a.urls ?? []).filter((u) => !known.has(normalizeUrl(u)));
    if (added.length) return `new URL ${added.join(', ')}`;
    if ((a.bindDn ?? '').trim().toLowerCase() !== (b.bindDn ?? '').trim().toLowerCase()) return 'another bind DN';
    if (b.startTls && !a.startTls) return 'StartTLS turned off';
    if (!b.allowInsecure && a.allowInsecure) return 'allowInsecure turned on';
    if ((a.caCertificate ?? '').trim() !== (b.caCertificate ?? '').trim()) return 'another CA certificate';
    return null;
  }
  if (kind === 'radius') {
    const key = (s: { host: string; port?: number }) => `${s.host.toLowerCase()}:${s.port ?? 1812}`;
    const known = new Set(((before as Partial<RadiusSettings>).servers ?? []).map(key));
    const added = ((after as Partial<RadiusSettings>).servers ?? []).map(key).filter((k) => !known.has(k));
    return added.length ? `new server ${added.join(', ')}` : null;
  }
  if (kind === 'oidc') {
    // The client secret goes to the issuer's token endpoint: another issuer (or client) must be told it anew.
    const [b, a] = [before as Partial<OidcSettings>, after as Partial<OidcSettings>];
    if (normalizeUrl(a.issuer ?? '') !== normalizeUrl(b.issuer ?? '')) return 'another issuer';
    if ((a.clientId ?? '') !== (b.clientId ?? '')) return 'another client id';
  }
  return null;
}

function normalizeUrl(url: string): string {
  return url.trim().toLowerCase().replace(/\/$/, '');
}
