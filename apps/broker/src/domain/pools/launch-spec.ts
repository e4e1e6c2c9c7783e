import { NAME_PATTERN_PLACEHOLDER, USER_DATA_VARIABLE } from '@stagedoor/contract';
import type { PoolTemplate } from '../../db/schema/pools.ts';
import type { LaunchSpec } from '../../providers/cloud/cloud-provider.ts';
import { hashToken, newToken } from '../identity/tokens.ts';

/** Tags Stagedoor puts on every instance a pool launches; they win over the template's own. */
export const POOL_TAG = 'stagedoor:pool';
export const WORKSTATION_TAG = 'stagedoor:workstation';
export const MANAGED_TAG = 'stagedoor:managed';

/**
 * The EC2 ClientToken of a launch, derived from its action id — the workstation row reserved for it
 * (a uuid, so 39 characters, within EC2's 64). Every attempt of that launch (another subnet, another
 * type, a retry after a crash) carries the same token, and inventory sync adopts by it too.
 */
export function launchToken(workstationId: string): string {
  return `sd-launch-${workstationId}`;
}

/** `edit-{seq:03}` with 7 → `edit-007`; no pattern → `<pool name>-{seq:03}`. */
export function renderName(pattern: string | undefined, seq: number, poolName: string): string {
  const p = pattern ?? `${poolName}-{seq:03}`;
  const name = p.replace(new RegExp(NAME_PATTERN_PLACEHOLDER.source, 'g'), (_m, width: string | undefined) => String(seq).padStart(width ? Number(width) : 0, '0'));
  return name.slice(0, 128);
}

export interface UserDataValues {
  'workstation.name': string;
  'workstation.id': string;
  'pool.name': string;
  'pool.id': string;
  'agent.token': string;
}

/** Fill `{{variable}}`s; the pool's validation has already refused unknown ones. */
export function renderUserData(template: string, values: UserDataValues): string {
  return template.replace(new RegExp(USER_DATA_VARIABLE.source, 'g'), (whole, name: string) => (name in values ? values[name as keyof UserDataValues] : whole));
}

/** The template's tags with Stagedoor's own on top (the provider adds `Name` and `stagedoor:managed`). */
export function launchTags(template: PoolTemplate, poolId: string, workstationId: string): Record<string, string> {
  const own = Object.fromEntries(Object.entries(template.tags ?? {}).filter(([k]) => !k.startsWith('stagedoor:') && k !== 'Name'));
  return { ...own, [POOL_TAG]: poolId, [WORKSTATION_TAG]: workstationId };
}

/** Every tag the launched instance will carry, for checking it against the provider's tag filter. */
export function expectedInstanceTags(template: PoolTemplate, poolId: string): Record<string, string> {
  return { ...launchTags(template, poolId, '00000000-0000-0000-0000-000000000000'), [MANAGED_TAG]: 'true' };
}

export function launchSpecOf(template: PoolTemplate, row: { id: string; name: string; launchToken: string }, tags: Record<string, string>, userData: string | undefined): Omit<LaunchSpec, 'instanceType' | 'subnetId'> {
  return {
    imageId: template.imageId,
    launchTemplate: template.launchTemplate,
    securityGroupIds: template.securityGroupIds,
    iamInstanceProfile: template.iamInstanceProfile,
    keyName: template.keyName,
    name: row.name,
    tags,
    userData,
    clientToken: row.launchToken,
    hibernation: template.hibernation,
    rootVolumeGiB: template.rootVolumeGiB,
  };
}

/** A fresh agent enrollment token and the SHA-256 the database keeps; the plaintext goes only into user data. */
export function newAgentToken(): { token: string; hash: string } {
  const token = newToken('sda_');
  return { token, hash: hashToken(token) };
}
