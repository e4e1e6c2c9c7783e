import net from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { Client, FilterParser, InvalidCredentialsError, ResultCodeError, SizeLimitExceededError, type Entry } from 'ldapts';
import type { Logger } from 'pino';
import type { LdapSettings } from '@stagedoor/contract';
import { UnavailableError } from '../../domain/errors.ts';
import type { Directory, DirectoryTestReport, DirectoryUser, PasswordVerdict } from '../../domain/identity/directory.ts';

/** LDAP_MATCHING_RULE_IN_CHAIN: AD walks nested group membership on the server. */
const IN_CHAIN = '1.2.840.113556.1.4.1941';
/** userAccountControl ACCOUNTDISABLE. */
const UAC_DISABLED = 0x2;
/** A group nested deeper than this in OpenLDAP is almost certainly a membership loop. */
const MAX_NESTING = 8;

export interface LdapDirectoryOptions {
  /** The auth server's name, for messages and logs. */
  name: string;
  settings: LdapSettings;
  bindPassword: string | null;
  log: Logger;
}

/**
 * Active Directory and OpenLDAP through ldapts. Every call opens its own connection, trying the URLs
 * in order: a URL that cannot be reached (refused, timed out, TLS failure) moves to the next; a server
 * that answers decides. Nothing here ever falls back to a weaker check: when no URL answers, the caller
 * gets an `UnavailableError` naming the server and each URL's failure.
 */
export class LdapDirectory implements Directory {
  readonly #o: LdapDirectoryOptions;
  readonly #usernameAttribute: string;

  constructor(options: LdapDirectoryOptions) {
    this.#o = options;
    this.#usernameAttribute = options.settings.usernameAttribute ?? (options.settings.groupMembership === 'ad-member-of' ? 'sAMAccountName' : 'uid');
  }

  async findUser(login: string): Promise<DirectoryUser | null> {
    if (!login) return null;
    return this.#session(async (client) => {
      await this.#serviceBind(client);
      return this.#search(client, login);
    });
  }

  async verifyPassword(user: DirectoryUser, password: string): Promise<PasswordVerdict> {
    // An empty password is an unauthenticated bind, which LDAP servers answer with success (RFC 4513 §5.1.2).
    if (!password) return { ok: false, reason: 'empty password' };
    if (user.disabled) return { ok: false, reason: 'account disabled in the directory' };
    return this.#session(async (client) => {
      try {
        await client.bind(user.dn, password);
      } catch (err) {
        if (err instanceof InvalidCredentialsError) return { ok: false, reason: adBindReason(err.message) };
        throw err;
      }
      // Groups are read as the service account: users often may not read group entries themselves.
      await this.#serviceBind(client);
      return { ok: true, groups: await this.#groupsOf(client, user) };
    });
  }

  async test(login?: string): Promise<DirectoryTestReport> {
    return this.#session(async (client, url) => {
      await this.#serviceBind(client);
      if (!login) return { url };
      const user = await this.#search(client, login);
      return { url, user: user ? { dn: user.dn, username: user.username, groups: await this.#groupsOf(client, user) } : null };
    });
  }

  /** Run `fn` on a connection to the first URL that answers. */
  async #session<T>(fn: (client: Client, url: string) => Promise<T>): Promise<T> {
    const { settings, name, log } = this.#o;
    const failures: string[] = [];
    for (const url of settings.urls) {
      // ldapts speaks TLS from the first byte whenever tlsOptions are given: only for ldaps://.
      const ldaps = url.toLowerCase().startsWith('ldaps:');
      if (!ldaps && !settings.startTls && settings.allowInsecure !== true) {
        // The settings check refuses this; a row written some other way still never sends a password in clear.
        failures.push(`${url}: plain ldap:// without StartTLS is refused (set startTls, use ldaps://, or allowInsecure)`);
        continue;
      }
      const client = new Client({
        url,
        connectTimeout: settings.connectTimeoutMs,
        timeout: settings.searchTimeoutMs,
        ...(ldaps ? { tlsOptions: this.#tlsOptions() } : {}),
        strictDN: false,
      });
      try {
        if (settings.startTls && !ldaps) {
          const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
          await withDeadline(client.startTLS({ ...this.#tlsOptions(), host, ...(net.isIP(host) ? {} : { servername: host }) }), settings.connectTimeoutMs, 'StartTLS timed out');
        }
        return await fn(client, url);
      } catch (err) {
        if (err instanceof ResultCodeError || err instanceof UnavailableError) throw translate(err, name, url);
        const why = describe(err);
        failures.push(`${url}: ${why}`);
        log.warn({ authServer: name, url, err: why }, 'directory URL failed; trying the next');
      } finally {
        await client.unbind().catch(() => undefined);
      }
    }
    throw new UnavailableError(`directory "${name}" is unreachable, so nobody can sign in with it now: ${failures.join('; ')}`, { authServer: name, failures });
  }

  #tlsOptions(): ConnectionOptions {
    const ca = this.#o.settings.caCertificate;
    return { minVersion: 'TLSv1.2', rejectUnauthorized: true, ...(ca ? { ca: [ca] } : {}) };
  }

  async #serviceBind(client: Client): Promise<void> {
    const { bindDn } = this.#o.settings;
    if (!bindDn) return; // anonymous search
    try {
      await client.bind(bindDn, this.#o.bindPassword ?? '');
    } catch (err) {
      if (err instanceof ResultCodeError) {
        throw new UnavailableError(`directory "${this.#o.name}" refused the service bind as ${bindDn}: ${err.message.split('\n')[0]} — check the bind DN and password`, { authServer: this.#o.name });
      }
      throw err;
    }
  }

  async #search(client: Client, login: string): Promise<DirectoryUser | null> {
    const { settings } = this.#o;
    const filter = settings.userFilter.replaceAll('{username}', escapeFilterValue(login));
    let entries: Entry[];
    try {
      ({ searchEntries: entries } = await client.search(settings.userSearchBase, {
        scope: 'sub',
        filter,
        sizeLimit: 2,
        timeLimit: Math.ceil(settings.searchTimeoutMs / 1000),
        attributes: [this.#usernameAttribute, 'displayName', 'cn', 'mail', 'userAccountControl'],
      }));
    } catch (err) {
      if (err instanceof SizeLimitExceededError) return null; // more than one match: nobody
      throw err;
    }
    // Two entries for one login name is ambiguous; refusing is the only safe answer.
    if (entries.length !== 1) return null;
    const entry = entries[0]!;
    const attrs = lowerKeys(entry);
    const username = first(attrs[this.#usernameAttribute.toLowerCase()]);
    if (!username) return null;
    const uac = Number(first(attrs.useraccountcontrol) ?? 0);
    return {
      dn: entry.dn,
      username,
      displayName: first(attrs.displayname) ?? first(attrs.cn) ?? null,
      email: first(attrs.mail) ?? null,
      disabled: Number.isFinite(uac) && (uac & UAC_DISABLED) !== 0,
    };
  }

  async #groupsOf(client: Client, user: DirectoryUser): Promise<string[]> {
    const { settings } = this.#o;
    const base = settings.groupSearchBase ?? namingContext(settings.userSearchBase);
    const find = async (filter: string) => {
      const { searchEntries } = await client.search(base, { scope: 'sub', filter, attributes: ['cn'], paged: { pageSize: 500 } });
      return searchEntries.map((e) => e.dn);
    };
    if (settings.groupMembership === 'ad-member-of') {
      return find(`(&(objectClass=group)(member:${IN_CHAIN}:=${escapeFilterValue(user.dn)}))`);
    }
    if (settings.groupMembership === 'posix-group') {
      return find(`(&(objectClass=posixGroup)(memberUid=${escapeFilterValue(user.username)}))`);
    }
    // groupOfNames / groupOfUniqueNames: walk up from the user, one level of nesting per search.
    const seen = new Map<string, string>();
    let frontier = [user.dn];
    for (let depth = 0; depth < MAX_NESTING && frontier.length; depth++) {
      const members = frontier.map((dn) => escapeFilterValue(dn));
      const anyOf = members.map((m) => `(member=${m})(uniqueMember=${m})`).join('');
      const found = await find(`(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))(|${anyOf}))`);
      frontier = [];
      for (const dn of found) {
        const key = dn.toLowerCase();
        if (seen.has(key)) continue;
        seen.set(key, dn);
        frontier.push(dn);
      }
    }
    return [...seen.values()];
  }
}

/** RFC 4515 §3: a value inside a filter with `\ * ( )` and NUL escaped, so no input can change the filter. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[\\*()\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Why a filter template cannot be used, or null when it parses with a sample username. */
export function ldapFilterProblem(template: string): string | null {
  // Values are hex-escaped, so every parenthesis is structure: they must balance (ldapts' parser is lenient).
  let depth = 0;
  for (const c of template) {
    depth += c === '(' ? 1 : c === ')' ? -1 : 0;
    if (depth < 0) return 'a ")" closes nothing';
  }
  if (depth !== 0) return `${depth} "(" never closed`;
  try {
    FilterParser.parseString(template.replaceAll('{username}', 'sample'));
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** AD puts the real reason in the diagnostic message: `… data 52e, …`. */
function adBindReason(message: string): string {
  const code = /data ([0-9a-f]{3})/i.exec(message)?.[1]?.toLowerCase();
  const reasons: Record<string, string> = {
    '525': 'unknown user',
    '52e': 'wrong password',
    '530': 'not allowed to sign in at this time',
    '531': 'not allowed to sign in from this workstation',
    '532': 'password expired in the directory',
    '533': 'account disabled in the directory',
    '701': 'account expired in the directory',
    '773': 'the directory requires a password change',
    '775': 'account locked in the directory',
  };
  return (code && reasons[code]) ?? 'wrong password';
}

function translate(err: unknown, name: string, url: string): unknown {
  if (!(err instanceof ResultCodeError)) return err;
  return new UnavailableError(`directory "${name}" (${url}) refused the request: ${err.message.split('\n')[0]} — check the search base, filter and service account`, { authServer: name });
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && !err.message.includes(code) ? `${code} ${err.message}` : err.message.split('\n')[0]!;
}

/** The trailing dc= components of a DN: where both users and groups live unless configured otherwise. */
export function namingContext(dn: string): string {
  const parts = dn.split(/(?<!\\),/).map((p) => p.trim());
  const dcs: string[] = [];
  for (let i = parts.length - 1; i >= 0 && /^dc=/i.test(parts[i]!); i--) dcs.unshift(parts[i]!);
  return dcs.length ? dcs.join(',') : dn;
}

function lowerKeys(entry: Entry): Record<string, Entry[string]> {
  const out: Record<string, Entry[string]> = {};
  for (const [k, v] of Object.entries(entry)) out[k.toLowerCase()] = v;
  return out;
}

function first(v: Entry[string] | undefined): string | undefined {
  const x = Array.isArray(v) ? v[0] : v;
  if (x === undefined) return undefined;
  return Buffer.isBuffer(x) ? x.toString('utf8') : x;
}

async function withDeadline<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
