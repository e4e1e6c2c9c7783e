import type { z } from 'zod';
import type { AuthServerSpec, SiteAuthServer } from '@stagedoor/contract';
import type { ApplyContext, SiteKind } from './site-kinds.ts';
import { attempt } from './site-kinds.ts';

type Entry = z.output<typeof SiteAuthServer>;

/** The file names groups and the second-factor server; the service takes ids. Its error paths, in the file's words. */
const FILE_FIELDS: [RegExp, string][] = [
  [/\.mfaServerId$/, '.mfaServer'],
  [/\.requiredForGroupIds(\[\d+\])?$/, '.requiredForGroups$1'],
  [/\.groupMappings\[(\d+)\]\.groupId$/, '.groupMappings[$1].group'],
];

const isSecondFactor = (e: Entry) => e.kind === 'totp' || (e.kind === 'radius' && e.purpose !== 'primary');

/**
 * Auth servers in a site file. Second-factor servers go first, so a server may name one that is
 * further down the file; otherwise file order (which is also the lookup order for new servers).
 */
export const authServersKind: SiteKind<Entry> = {
  key: 'authServers',
  order: (entries) => [...entries.keys()].sort((a, b) => Number(isSecondFactor(entries[b]!)) - Number(isSecondFactor(entries[a]!)) || a - b),
  async apply(ctx, e, path) {
    const spec = await resolveNames(ctx, e, path);
    if (!spec) return undefined;
    const before = ctx.problems.length;
    const r = await attempt(ctx, path, () => ctx.authServers.upsertByName(ctx.actor, spec, ctx.tx));
    for (const p of ctx.problems.slice(before)) p.path = FILE_FIELDS.reduce((s, [from, to]) => s.replace(from, to), p.path);
    return r && { kind: 'auth-server', name: e.name, action: r.action, fields: r.fields.map((f) => FILE_FIELDS.reduce((s, [from, to]) => `.${s}`.replace(from, to).slice(1), f)) };
  },
};

async function resolveNames(ctx: ApplyContext, e: Entry, path: string): Promise<AuthServerSpec | undefined> {
  const before = ctx.problems.length;
  const groupId = async (name: string, field: string) => {
    const g = await ctx.groups.findByName(name, ctx.tx);
    if (!g) ctx.problems.push({ path: `${path}.${field}`, message: `no group named "${name}" in the file or the database` });
    return g?.id ?? '';
  };
  const spec: Record<string, unknown> = { ...e };
  if ('mfaServer' in e) {
    delete spec.mfaServer;
    if (e.mfaServer) {
      const server = await ctx.authServers.findByName(e.mfaServer, ctx.tx);
      if (!server) ctx.problems.push({ path: `${path}.mfaServer`, message: `no auth server named "${e.mfaServer}" in the file or the database` });
      spec.mfaServerId = server?.row.id;
    } else if (e.mfaServer === null) spec.mfaServerId = null;
  }
  if (e.kind === 'ldap' || e.kind === 'oidc' || e.kind === 'saml') spec.groupMappings = await Promise.all(e.groupMappings.map(async (m, i) => ({ externalGroup: m.externalGroup, groupId: await groupId(m.group, `groupMappings[${i}].group`) })));
  if ('requiredForGroups' in e) {
    delete spec.requiredForGroups;
    if (e.requiredForGroups) {
      const ids: string[] = [];
      for (const [i, name] of e.requiredForGroups.entries()) ids.push(await groupId(name, `requiredForGroups[${i}]`));
      spec.requiredForGroupIds = ids;
    }
  }
  return ctx.problems.length === before ? (spec as AuthServerSpec) : undefined;
}
