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

/**
 * Evaluates the intrinsics a stack output uses (Ref, Fn::GetAtt, Fn::Join, Fn::Split, Fn::Select,
 * Fn::If) with deploy-time values a test chooses: what CloudFormation would show after a deploy.
 */
export function resolveCfn(value: unknown, ctx: { refs: Record<string, unknown>; attrs?: (resource: string, attr: string) => unknown; conditions?: Record<string, boolean> }): unknown {
  const r = (v: unknown): unknown => resolveCfn(v, ctx);
  if (Array.isArray(value)) return value.map(r);
  if (typeof value !== 'object' || value === null) return value;
  const [[fn, arg]] = Object.entries(value) as [[string, unknown]];
  const args = arg as unknown[];
  switch (fn) {
    case 'Ref':
      if (!(String(arg) in ctx.refs)) throw new Error(`resolveCfn: no value for Ref ${String(arg)}`);
      return ctx.refs[String(arg)];
    case 'Fn::GetAtt':
      return ctx.attrs?.(String(args[0]), String(args[1])) ?? `${String(args[0])}.${String(args[1])}`;
    case 'Fn::Join':
      return (r(args[1]) as unknown[]).flat().map(String).join(String(args[0]));
    case 'Fn::Split':
      return String(r(args[1])).split(String(args[0]));
    case 'Fn::Select':
      return (r(args[1]) as unknown[])[Number(args[0])];
    case 'Fn::If':
      return r(ctx.conditions?.[String(args[0])] ? args[1] : args[2]);
    default:
      throw new Error(`resolveCfn: ${fn} is not handled`);
  }
}

/** Deploy-time values for a starter site.yaml: subnets and groups get well-formed EC2 ids. */
export function siteYamlRefs(json: Synthesized['json']): Record<string, unknown> {
  const refs: Record<string, unknown> = { 'AWS::Region': 'eu-west-1', WorkstationAmiIds: ['ami-0123456789abcdef0', 'ami-0fedcba9876543210'], RadiusServer: 'radius.corp.example', RadiusPort: 1812 };
  let n = 0;
  for (const [id, res] of Object.entries(json.Resources)) {
    if (res.Type === 'AWS::EC2::Subnet') refs[id] = `subnet-0${(++n).toString(16).padStart(16, '0')}`;
  }
  return refs;
}
