import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { buildApp } from '../src/app.ts';
import type { DeploymentConfig } from '../src/config.ts';
import type { StagedoorStack } from '../src/stack.ts';

export interface Resource {
  Type: string;
  Properties: Record<string, unknown>;
  DependsOn?: string[];
  UpdatePolicy?: Record<string, unknown>;
}
export interface Synthesized {
  stack: StagedoorStack;
  template: Template;
  json: { Resources: Record<string, Resource>; Outputs: Record<string, { Value: unknown }>; Parameters: Record<string, unknown> };
  /** cdk-nag AwsSolutions findings not acknowledged in nag.ts, as "rule @ construct path". */
  nagFindings: string[];
}

/** One synthesis per test file (aws-cdk-lib is slow to load and to synthesize): no account, no lookups. */
export function synth(config?: DeploymentConfig): Synthesized {
  const { app, stack } = buildApp({ config });
  const template = Template.fromStack(stack);
  const report = new AwsSolutionsChecks(app).validateScope(app);
  const nagFindings = report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} @ ${r.constructPath ?? r.resourceLogicalId ?? "?"}`));
  return { stack, template, json: template.toJSON() as Synthesized['json'], nagFindings };
}

export function ofType(json: Synthesized['json'], type: string): Array<[string, Resource]> {
  return Object.entries(json.Resources).filter(([, r]) => r.Type === type);
}

export function one(json: Synthesized['json'], type: string, match: (r: Resource, id: string) => boolean = () => true): [string, Resource] {
  const found = ofType(json, type).filter(([id, r]) => match(r, id));
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}: ${found.map(([id]) => id).join(', ')}`);
  return found[0] as [string, Resource];
}

/** The logical id a `{Ref}` or `{Fn::GetAtt}` points at. */
export function target(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
  return v.Ref ?? v['Fn::GetAtt']?.[0];
}
