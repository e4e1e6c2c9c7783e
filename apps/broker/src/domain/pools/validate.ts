import type { PoolTemplate } from '../../db/schema/pools.ts';
import { ProviderError, type CloudProvider } from '../../providers/cloud/cloud-provider.ts';
import type { FieldProblem } from '../errors.ts';
import type { ProviderRow } from '../providers/provider-registry.ts';
import { expectedInstanceTags } from './launch-spec.ts';

/**
 * Check a provisioning template against its provider before anything is stored: the provider can
 * launch at all, the AMI, every subnet and the security groups exist (the cloud is asked), and the
 * instances it launches will be seen by inventory sync (they must carry the provider's tag filter,
 * or sync would take them for vanished machines). Paths name the field: `template.subnetIds[1]`.
 */
export async function templateProblems(template: PoolTemplate, provider: ProviderRow, cloud: CloudProvider, poolId: string | null): Promise<FieldProblem[]> {
  if (provider.kind === 'static') return [{ path: 'template', message: `the static provider "${provider.name}" cannot launch machines: remove the template, or use an aws-ec2 provider` }];
  const problems: FieldProblem[] = [];
  const expected = expectedInstanceTags(template, poolId ?? '00000000-0000-0000-0000-000000000000');
  for (const [key, values] of Object.entries(provider.tagFilter)) {
    if (key === 'Name' || key === 'stagedoor:pool' || key === 'stagedoor:workstation') continue;
    const value = expected[key];
    if (value === undefined || (values.length > 0 && !values.includes(value))) {
      const want = values.length ? `${key}=${values.join('|')}` : `a "${key}" tag`;
      problems.push({ path: `template.tags.${key}`, message: `provider "${provider.name}" imports only instances with ${want}: add it to template.tags, or inventory sync would take this pool's machines for vanished ones` });
    }
  }
  if (template.hibernation && cloud.cannotHibernate) {
    // EC2 would refuse every launch of such a type (UnsupportedHibernationConfiguration): say so now.
    const bad = await onceMore(() => cloud.cannotHibernate!(template.instanceTypes));
    template.instanceTypes.forEach((t, i) => {
      const why = bad.get(t);
      if (why) problems.push({ path: `template.instanceTypes[${i}]`, message: `${t} cannot hibernate (${why}; GPU families never can): remove it, or set template.hibernation to false` });
    });
  }
  if (!cloud.validateLaunch) return problems;
  const validate = cloud.validateLaunch.bind(cloud);
  const base = await onceMore(() => validate({
    imageId: template.imageId,
    launchTemplate: template.launchTemplate,
    subnetId: template.subnetIds[0],
    securityGroupIds: template.securityGroupIds,
    iamInstanceProfile: template.iamInstanceProfile,
    keyName: template.keyName,
  }));
  for (const p of base) problems.push({ path: templatePath(p.path, 0), message: p.message });
  for (let i = 1; i < template.subnetIds.length; i++) {
    // Only the subnet is in question here; an empty launch template stands in for the AMI already checked.
    const more = await onceMore(() => validate({ launchTemplate: {}, subnetId: template.subnetIds[i] }));
    for (const p of more.filter((x) => x.path === 'subnetId')) problems.push({ path: `template.subnetIds[${i}]`, message: p.message });
  }
  return problems;
}

/**
 * The provider's existence checks are not retried by the provider itself; a dropped keep-alive
 * connection (ECONNRESET) would otherwise fail a pool change with a 502. One more try, then the error.
 */
async function onceMore<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ProviderError && err.kind === 'unavailable') return fn();
    throw err;
  }
}

function templatePath(path: string, subnetIndex: number): string {
  if (path === 'subnetId') return `template.subnetIds[${subnetIndex}]`;
  return `template.${path}`;
}
