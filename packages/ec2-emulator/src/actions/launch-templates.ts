// Launch templates referenced by RunInstances (`LaunchTemplate.LaunchTemplateId` /
// `LaunchTemplateName` / `Version`). Templates are seeded through the control API.

import { Ec2Error, invalidParameterCombination, invalidParameterValue } from '../errors.ts';
import type { QueryParams } from '../query.ts';
import type { Ec2Store } from '../store.ts';
import type { LaunchTemplateData, LaunchTemplateRecord } from '../types.ts';

export interface ResolvedTemplate {
  template: LaunchTemplateRecord;
  versionNumber: number;
  data: LaunchTemplateData;
}

function findByName(store: Ec2Store, name: string): LaunchTemplateRecord | undefined {
  for (const template of store.launchTemplates.values()) if (template.launchTemplateName === name) return template;
  return undefined;
}

export function resolveLaunchTemplate(store: Ec2Store, params: QueryParams): ResolvedTemplate | undefined {
  const id = params.get('LaunchTemplate.LaunchTemplateId');
  const name = params.get('LaunchTemplate.LaunchTemplateName');
  const version = params.get('LaunchTemplate.Version');
  if (id === undefined && name === undefined) {
    if (version !== undefined) throw invalidParameterValue('A launch template ID or name must be specified.');
    return undefined;
  }
  if (id !== undefined && name !== undefined) {
    throw invalidParameterCombination('Specify either the launch template ID or the launch template name, but not both.');
  }
  const template = id !== undefined ? store.launchTemplates.get(id) : findByName(store, name ?? '');
  if (!template) {
    if (id !== undefined) {
      throw new Ec2Error(
        'InvalidLaunchTemplateId.NotFound',
        `The specified launch template, with template ID ${id}, does not exist.`,
      );
    }
    throw new Ec2Error(
      'InvalidLaunchTemplateName.NotFoundException',
      `The specified launch template, with template name ${name}, does not exist.`,
    );
  }
  const latest = Math.max(...template.versions.map((v) => v.versionNumber));
  let versionNumber: number;
  if (version === undefined || version === '$Default') versionNumber = template.defaultVersion;
  else if (version === '$Latest') versionNumber = latest;
  else if (/^\d+$/.test(version)) versionNumber = Number(version);
  else throw invalidParameterValue(`Invalid launch template version: ${version}`);
  const found = template.versions.find((v) => v.versionNumber === versionNumber);
  if (!found) {
    throw new Ec2Error(
      'InvalidLaunchTemplateId.VersionNotFound',
      `Could not find launch template version ${versionNumber} for launch template ID ${template.launchTemplateId}.`,
    );
  }
  return { template, versionNumber, data: found.data };
}
